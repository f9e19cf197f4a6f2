"""``recon-ros bench-soak``: memory over time. A bag (the demo bag by default) is decoded once and
its frames are fed again and again for ``--minutes``, as a robot that keeps mapping the same room
would: to the reconstructor in this process (with the map handed over and meshed as atlas_node
does), or with ``--node`` to a live atlas_node over DDS (images, CameraInfo and /tf, stamps always
increasing; each pass waits until the node has accounted for every image). RSS (of this process,
or of the node's) is sampled after every pass; once the map stops growing (the warm-up), it should
stay flat. Prints the samples and the growth after warm-up (the target is under 5 % over 30
minutes).

    recon-ros bench-soak --minutes 30          # results: bench/soak.md
    recon-ros bench-soak --minutes 30 --node
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import yaml


def rss_mib(pid: int | str = "self") -> float:
    with open(f"/proc/{pid}/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def growth_summary(samples: list[tuple[float, float, int]]) -> str:
    """The memory growth after warm-up of ``samples`` (minutes, RSS MiB, map chunks), one per
    pass. Warm-up lasts until the map stops growing (its chunk count grows by at most 1 % from
    one pass to the next).
    RSS swings by a hundred MiB between passes (torch's allocator keeps and returns blocks), so
    the growth compares medians over the first and the last quarter of the samples after warm-up
    and gives the least-squares slope beside it, not one sample against another."""
    if len(samples) < 2:
        return "too few passes for a growth figure"
    # a live node's map may still gain a chunk now and then (keyframes differ pass to pass)
    warm = next(
        (i for i in range(1, len(samples)) if samples[i][2] <= 1.01 * samples[i - 1][2]),
        len(samples) - 1,
    )
    after = samples[warm:]
    minutes = np.array([m for m, _, _ in after])
    rss = np.array([r for _, r, _ in after])
    quarter = max(len(after) // 4, 1)
    first, last = float(np.median(rss[:quarter])), float(np.median(rss[-quarter:]))
    slope = float(np.polyfit(minutes, rss, 1)[0]) if len(after) > 2 else float("nan")
    return (
        f"after warm-up (pass {warm + 1}, {after[0][0]:.1f} min) to {after[-1][0]:.1f} min, "
        f"{len(after)} passes: median RSS {first:.0f} MiB in the first quarter, {last:.0f} MiB in "
        f"the last: {100.0 * (last - first) / first:+.1f} % (target under 5 %); fitted slope "
        f"{slope:+.2f} MiB/min; RSS range {rss.min():.0f}-{rss.max():.0f} MiB; map "
        f"{after[0][2]} -> {after[-1][2]} chunks"
    )


def decoded_frames(bag_path, image_topic: str, info_topic: str, world: str = "world") -> list:
    """(rgb, PinholeCamera, T_world_cam) of every image of a bag with a pose (replay's
    decoding)."""
    from recon_ros.apps.replay import load_transforms
    from recon_ros.io.bag_salvage import readable_bag
    from recon_ros.io.posed_frames import FrameDropped, posed_frame

    frames, info = [], None
    with readable_bag(bag_path) as (bag, _):
        tf, _ = load_transforms(bag)
        for topic, _, _, msg in bag.messages([image_topic, info_topic]):
            if topic == info_topic:
                info = msg
                continue
            try:
                frame = posed_frame(msg, info, lambda f, t: tf.lookup(world, f, t))
            except FrameDropped:
                continue
            frames.append((frame.rgb, frame.camera, frame.T_world_cam))
    return frames


def node_soak(
    frames: list,
    minutes: float,
    workdir,
    rate_hz: float = 10.0,
    log=print,
    params=None,
    paced: bool = True,
) -> list:
    """Feed ``frames`` (rgb, camera, T_world_cam) to a live atlas_node over DDS again and again for
    ``minutes``; returns the samples (minutes, node RSS MiB, map chunks), one per pass.
    ``paced``: each image waits until the node has accounted for the one before (at most
    ``rate_hz``), so a slow machine measures memory rather than a node that fell behind its
    transforms (unpaced, a 2-core machine fell 20 s behind /tf and dropped every image as
    ``no_pose``)."""
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo, Image
    from tf2_msgs.msg import TFMessage

    from recon_ros.io import camera_info_conversions, image_conversions, transform_conversions
    from recon_ros.msg import AtlasStatus
    from recon_ros.ros.graph import NodeProcess, ObserverNode, images_accounted_for

    reliable = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
    latched = QoSProfile(
        depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
    )
    observer = ObserverNode("soak")
    node = NodeProcess(
        "atlas_node",
        Path(workdir) / "atlas_node_soak.log",
        {"device": "cpu", **(params or {})},  # otherwise atlas_node's defaults, as a robot runs it
        {"image": "/soak/image", "camera_info": "/soak/camera_info"},
    )
    samples: list[tuple[float, float, int]] = []
    try:
        status = observer.collect(AtlasStatus, "/atlas_node/status", latched)
        status.wait_for(lambda m, _: True, 120, "atlas_node to come up", [node])
        image_pub = observer.node.create_publisher(Image, "/soak/image", reliable)
        info_pub = observer.node.create_publisher(CameraInfo, "/soak/camera_info", reliable)
        tf_pub = observer.node.create_publisher(TFMessage, "/tf", reliable)
        while min(p.get_subscription_count() for p in (image_pub, info_pub, tf_pub)) == 0:
            time.sleep(0.05)
        time.sleep(0.5)
        started, t, sent = time.monotonic(), 100.0, 0  # stamps always increase across passes
        while (time.monotonic() - started) / 60.0 < minutes:
            for rgb, camera, T in frames:
                t += 0.1
                stamp = transform_conversions.ns_to_stamp(round(t * 1e9))
                tf_pub.publish(
                    TFMessage(
                        transforms=[
                            transform_conversions.matrix_to_transform_stamped(
                                T, stamp, "world", "cam"
                            )
                        ]
                    )
                )
                info_pub.publish(camera_info_conversions.camera_info_msg(camera, stamp, "cam"))
                image_pub.publish(image_conversions.rgb_to_image_msg(rgb, stamp, "cam"))
                sent += 1
                time.sleep(1.0 / rate_hz)
                if paced:  # the next image once this one is done with (memory, not speed)
                    caught_up = images_accounted_for(sent, quiet_s=2.0)
                    status.wait_for(caught_up, 300, "the node to catch up", [node])

            accounted = images_accounted_for(sent, quiet_s=3.0)
            last = status.wait_for(accounted, 600, "the pass accounted for", [node])
            samples.append(
                ((time.monotonic() - started) / 60.0, rss_mib(node.process.pid), last.map_chunks)
            )
            log(
                f"pass {len(samples)}: {samples[-1][0]:5.1f} min, node RSS {samples[-1][1]:7.1f} "
                f"MiB, map {samples[-1][2]} chunks, {sent} images ({last.frames_dropped} dropped)"
            )
    finally:
        node.stop()
        observer.close()
    return samples


def run(args: argparse.Namespace) -> int:
    import torch

    from recon_ros import parameters
    from recon_ros.apps.demo import default_demo_bag
    from recon_ros.reconstruction import build_reconstructor

    torch.set_num_threads(args.threads)
    frames = decoded_frames(
        args.bag or default_demo_bag(), args.image_topic, args.camera_info_topic
    )
    if not frames:
        raise ValueError("bag: no image with a pose")
    if args.node:
        import tempfile

        with tempfile.TemporaryDirectory(prefix="recon_soak_") as workdir:
            print(f"soak: {len(frames)} frames a pass to a live atlas_node; {args.minutes} min")
            params = {}
            for item in args.param:
                key, _, value = item.partition("=")
                params[key] = yaml.safe_load(value)
            samples = node_soak(
                frames,
                args.minutes,
                workdir,
                log=lambda text: print(text, flush=True),
                params=params,
            )
        print(growth_summary(samples), flush=True)
        return 0
    values = parameters.resolve({"device": "cpu"})
    reconstructor, description, _ = build_reconstructor(values)
    print(f"soak: {len(frames)} frames a pass, {description}; {args.minutes} min", flush=True)
    started = time.monotonic()
    samples: list[tuple[float, float, int]] = []  # (minutes, RSS MiB, map chunks)
    stamp = 0.0
    passes = 0
    while (time.monotonic() - started) / 60.0 < args.minutes:
        for i, (rgb, camera, T) in enumerate(frames):
            stamp += 0.1
            # a fresh array each time, as a camera delivers (a reference kept by mistake
            # would otherwise go unseen: the same arrays come round every pass)
            reconstructor.integrate(rgb.copy(), camera.K, T, stamp)
            if i % 10 == 9:
                reconstructor.update()
                reconstructor.mesh()
                reconstructor.semantic_points()
        passes += 1
        minutes = (time.monotonic() - started) / 60.0
        samples.append((minutes, rss_mib(), reconstructor.map.num_chunks))
        print(
            f"pass {passes}: {minutes:5.1f} min, RSS {samples[-1][1]:7.1f} MiB, map "
            f"{samples[-1][2]} chunks",
            flush=True,
        )
    print(growth_summary(samples), flush=True)
    return 0


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "bench-soak",
        help="memory over a long run of the same bag",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--bag", help="rosbag2 folder (default: the demo bag)")
    parser.add_argument("--image-topic", default="/camera/color/image_raw")
    parser.add_argument("--camera-info-topic", default="/camera/color/camera_info")
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--node", action="store_true", help="feed a live atlas_node over DDS (its RSS is sampled)"
    )
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an atlas_node parameter for --node (repeatable; VALUE in YAML)",
    )
    parser.set_defaults(func=run)
    return parser
