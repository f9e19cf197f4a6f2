"""The conv-LSTM 3D-R2N2 of seed 001: an object's 32^3 occupancy from a few unposed views.
ROS-free; shapes in each module's docstrings."""
