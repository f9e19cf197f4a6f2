"""The Everted U-Net of seed 002: a room's occupancy and per-class masks from a fixed rig of
cameras. ROS-free; shapes in each module's docstrings."""
