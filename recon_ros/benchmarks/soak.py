"""``recon-ros bench-soak``: memory over time. A bag (the demo bag by default) is decoded once and
its frames are fed to the reconstructor again and again for ``--minutes``, as a robot that keeps
mapping the same room would, with the map handed over and meshed as atlas_node does. RSS is
sampled after every pass; once the map stops growing (the warm-up), RSS should stay flat. Prints
the samples and the growth after warm-up (the target is under 5 % over 30 minutes).

    recon-ros bench-soak --minutes 30          # results: bench/soak.md
"""

from __future__ import annotations

import argparse
import os
import time


def rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def decoded_frames(bag_path, image_topic: str, info_topic: str, world: str = "world") -> list:
    """(rgb, K, T_world_cam) of every image of a bag with a pose (replay's decoding)."""
    from recon_ros.bag_salvage import readable_bag
    from recon_ros.frames import FrameDropped, posed_frame
    from recon_ros.replay import load_transforms

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
            frames.append((frame.rgb, frame.camera.K, frame.T_world_cam))
    return frames


def run(args: argparse.Namespace) -> int:
    import torch

    from recon_ros import parameters
    from recon_ros.demo import default_demo_bag
    from recon_ros.reconstruction import build_reconstructor

    torch.set_num_threads(args.threads)
    frames = decoded_frames(
        args.bag or default_demo_bag(), args.image_topic, args.camera_info_topic
    )
    if not frames:
        raise ValueError("bag: no image with a pose")
    values = parameters.resolve({"device": "cpu"})
    reconstructor, description, _ = build_reconstructor(values)
    print(f"soak: {len(frames)} frames a pass, {description}; {args.minutes} min", flush=True)
    started = time.monotonic()
    samples: list[tuple[float, float, int]] = []  # (minutes, RSS MiB, map chunks)
    stamp = 0.0
    passes = 0
    while (time.monotonic() - started) / 60.0 < args.minutes:
        for i, (rgb, K, T) in enumerate(frames):
            stamp += 0.1
            reconstructor.integrate(rgb, K, T, stamp)
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
    # Warm-up: until the map stops growing (the same chunk count two passes running).
    warm = next(
        (i for i in range(1, len(samples)) if samples[i][2] == samples[i - 1][2]), len(samples) - 1
    )
    base, last = samples[warm], samples[-1]
    growth = 100.0 * (last[1] - base[1]) / base[1]
    per_minute = (last[1] - base[1]) / max(last[0] - base[0], 1e-9)
    print(
        f"after warm-up (pass {warm + 1}, {base[0]:.1f} min, {base[1]:.0f} MiB): RSS "
        f"{last[1]:.0f} MiB at {last[0]:.1f} min: {growth:+.1f} % ({per_minute:+.1f} MiB/min), "
        f"map {base[2]} -> {last[2]} chunks",
        flush=True,
    )
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
    parser.set_defaults(func=run)
    return parser
