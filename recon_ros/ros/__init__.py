"""The rclpy layer: the nodes, their posed-image input, QoS profiles, parameter declaration
and the process runner that starts installed nodes and watches them over DDS. Everything
below it (``core``, ``io``) is ROS-free; this is where messages meet the algorithm."""
