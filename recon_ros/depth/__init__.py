"""The multi-view depth network: training data and training (the model lives in
``core.depth_net``)."""
