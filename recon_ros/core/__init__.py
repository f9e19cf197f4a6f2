"""The ROS-free reconstruction core: camera, back-projection, rolling volume, models, meshing.

Nothing under ``recon_ros.core`` imports rclpy or ROS messages; the nodes convert at the edge.
"""
