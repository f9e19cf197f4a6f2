"""Single-image scene reconstruction (seed 004): a depth U-Net, differentiable voxelisation of its
back-projected depth, and an IF-Net that completes the occupancy of the scene in front of the
camera. ROS-free; shapes in each module's docstrings."""
