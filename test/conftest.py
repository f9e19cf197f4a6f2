"""Shared pytest set-up.

Every test session gets its own ROS domain and keeps DDS discovery on this machine, so parallel
sessions (and other ROS graphs on the machine) never see each other's topics; DDS data goes over
UDP loopback (see below).
"""

import os
import random

import pytest

if "RECON_ROS_TEST_DOMAIN" not in os.environ:
    # 30-101: clear of the default domain 0 and inside ROS's safe range on Linux
    os.environ["RECON_ROS_TEST_DOMAIN"] = str(random.SystemRandom().randint(30, 101))
os.environ["ROS_DOMAIN_ID"] = os.environ["RECON_ROS_TEST_DOMAIN"]
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")  # Jazzy and later
os.environ.setdefault("ROS_LOCALHOST_ONLY", "1")  # Humble
# Data over UDP loopback, not Fast DDS's shared memory: a node killed by a test timeout leaves its
# /dev/shm segments behind, and later participants that reuse those port numbers on this machine
# can discover each other yet receive no data (seen in CI). Fast DDS 2.13 and later read this.
os.environ.setdefault("FASTDDS_BUILTIN_TRANSPORTS", "UDPv4")


@pytest.fixture
def tiny_r2n2_config():
    """A 3D-R2N2 architecture small enough for tests (31 x 31 views, a few channels), real code."""
    from recon_ros.r2n2.model import R2N2Config

    return R2N2Config(image_size=31, encoder_channels=(4, 8, 8, 8, 8, 8), feature_size=32,
                      hidden=8, decoder_channels=(8, 4, 4))  # fmt: skip


@pytest.fixture
def tiny_everted_config():
    """An Everted U-Net small enough for tests (64 x 64 views, a few channels) with the paper's
    80 x 96 x 64 grid, real code."""
    from recon_ros.everted.model import EvertedConfig

    return EvertedConfig(image_size=64, encoder_channels=(4, 8, 8), volume_channels=6,
                         branch_channels=(6, 4, 4, 4), dropout=0.0)  # fmt: skip


@pytest.fixture
def tiny_ifnet_config():
    """A single-view depth + IF-Net small enough for tests (32 x 32 input, 16 x 12 x 12 grid),
    real code."""
    from recon_ros.ifnet.ifnet import SingleViewConfig

    return SingleViewConfig(
        grid_dims=(16, 12, 12), voxel_size=0.25, near=0.5, image_size=(32, 32), unet_levels=3,
        unet_channels=4, unet_max_channels=8, ifnet_channels=(4, 8), ifnet_hidden=16,
    )  # fmt: skip
