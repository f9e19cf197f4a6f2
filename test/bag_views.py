"""Depth views of a bag for tests: every depth image with its intrinsics and the world pose of its
optical frame (from the bag's /tf and /tf_static), to check that a mesh lies where the scene is."""

from __future__ import annotations

import numpy as np

from recon_ros.io import camera_info_conversions, image_conversions, transform_conversions
from recon_ros.io.bagfile import BagReader
from recon_ros.io.tf_buffer import TransformBuffer


def depth_views(bag_path, depth_topic: str, info_topic: str, world: str = "world", every: int = 1):
    buffer = TransformBuffer(cache_time_s=3600)
    info, views, messages = None, [], []
    with BagReader(bag_path) as bag:
        for topic, _, _, msg in bag.messages(["/tf", "/tf_static", depth_topic, info_topic]):
            if topic == info_topic:
                info = msg
            elif topic == depth_topic:
                messages.append((msg, info))
            else:
                buffer.set_tf_message(msg, static=topic == "/tf_static")
    for msg, msg_info in messages[::every]:
        depth = image_conversions.image_to_depth(msg)
        K = camera_info_conversions.camera_info_to_camera(msg_info).K
        stamp = transform_conversions.stamp_to_ns(msg.header.stamp)
        T = buffer.lookup(world, msg.header.frame_id, stamp)
        views.append((depth, K, np.asarray(T)))
    return views
