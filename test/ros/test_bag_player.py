"""bag_player over DDS: it waits for as many subscribers as asked (two nodes on one image topic:
the first to match must not start playback before the other hears it), and then plays every
image. Ctrl-C pressed again and again while it plays still ends it cleanly."""

from __future__ import annotations

import signal
import time

import pytest
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from recon_ros.apps.demo import default_demo_bag
from recon_ros.io.bagfile import BagReader

IMAGE_TOPIC = "/camera/color/image_raw"
RELIABLE = QoSProfile(
    depth=1000, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE
)


@pytest.mark.timeout(300)
def test_player_waits_for_the_second_subscriber(ros_node, start_node):
    bag = default_demo_bag()
    with BagReader(bag) as reader:
        images = reader.topics[IMAGE_TOPIC].count
    first = ros_node.collect(Image, IMAGE_TOPIC, RELIABLE)
    player = start_node(
        "bag_player",
        {
            "bag": str(bag),
            "rate": 4.0,
            "wait_for_subscribers": [IMAGE_TOPIC],
            "wait_for_subscriber_count": 2,
            "wait_timeout_s": 120.0,
        },
    )
    # one subscriber only: nothing is played, however long the player has been up
    time.sleep(4.0)
    assert player.alive() and not first.messages, player.log()
    second = ros_node.collect(Image, IMAGE_TOPIC, RELIABLE)
    for collector in (first, second):
        collector.wait_for(lambda _, all_: len(all_) == images, 120, "every image", [player])
    assert player.stop() == 0
    assert "playing anyway" not in player.log()


@pytest.mark.timeout(300)
def test_repeated_ctrl_c_while_playing_exits_cleanly(ros_node, start_node):
    """The first SIGINT stops playback; the ones after it land in the teardown, which must
    finish and exit 0 (a SIGINT there used to end the process by the signal, exit -2)."""
    images = ros_node.collect(Image, IMAGE_TOPIC, RELIABLE)
    player = start_node(
        "bag_player",
        {"bag": str(default_demo_bag()), "rate": 1.0, "wait_for_subscribers": [IMAGE_TOPIC]},
    )
    images.wait_for(lambda _, all_: len(all_) >= 2, 120, "two images", [player])
    for _ in range(20):
        if not player.alive():
            break
        player.process.send_signal(signal.SIGINT)
        time.sleep(0.01)
    assert player.process.wait(10) == 0, player.log()[-3000:]
    assert "Traceback" not in player.log()
