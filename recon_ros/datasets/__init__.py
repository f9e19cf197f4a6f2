"""Datasets: the synthetic scene folder layout (``layout``), loaders for ScanNet, 7-Scenes and TUM
RGB-D folders (``real``), the common frame-sequence interface (``sequence``) and export of any
sequence as a rosbag2 (``bag_export``)."""
