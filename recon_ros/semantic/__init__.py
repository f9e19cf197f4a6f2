"""The semantic network's data and training (``core.semantic_net``)."""
