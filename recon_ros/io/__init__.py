"""ROS-free input and output: message conversions (one module per message kind, duck-typed
so rclpy messages and bag messages both work), the TF buffer, rosbag2 files and their
salvage, PLY files, posed frames from messages, and images of meshes."""
