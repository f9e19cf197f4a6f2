"""`recon-ros demo`: the whole live path on the embedded demo bag.

atlas_node and sufficiency_node start as they would on a robot (installed executables, the
installed config/atlas.yaml), bag_player publishes the demo bag into the ROS graph at its recorded
rate, and when every image is accounted for the map is saved through atlas_node's save_map service.
The demo leaves in the output folder: the mesh (PLY), the map, a PNG render, the sufficiency count
image of the last keyframe, and report.md saying what ran. Needs ROS 2 (`make demo` sets it up).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

DEMO_BAG = "atlas_demo"
#: The demo scene: a seed no training or evaluation set uses (those start at 1000).
DEMO_SEED = 777
DEMO_FRAMES = 60
DEMO_SIZE = (384, 288)  # the network's input size: nothing is resampled on the way in


def default_demo_bag() -> Path:
    """The demo bag: installed under share/recon_ros/demo, or in the source checkout."""
    candidates = []
    try:
        from ament_index_python.packages import get_package_share_directory

        candidates.append(Path(get_package_share_directory("recon_ros")) / "demo" / DEMO_BAG)
    except (ImportError, LookupError, ValueError):
        pass
    candidates.append(Path(__file__).resolve().parents[2] / "demo" / DEMO_BAG)
    for path in candidates:
        if path.is_dir():
            return path
    raise FileNotFoundError(f"demo bag not found (looked in {', '.join(map(str, candidates))})")


def installed_config() -> Path:
    from ament_index_python.packages import get_package_share_directory

    return Path(get_package_share_directory("recon_ros")) / "config" / "atlas.yaml"


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="play the demo bag live into atlas_node and sufficiency_node; save, render, report",
    )
    parser.add_argument("-o", "--output", default="demo_output", help="output folder")
    parser.add_argument("--bag", help="rosbag2 to play instead of the shipped demo bag")
    parser.add_argument("--rate", type=float, default=1.0, help="playback speed")
    parser.add_argument(
        "--timeout", type=float, default=900.0, help="give up after this many seconds"
    )
    parser.add_argument("--device", default="auto", help="torch device of both nodes")
    parser.set_defaults(func=run)
    maker = subparsers.add_parser(
        "make-demo-bag", help="generate the demo scene and write it as the demo rosbag2 (mcap)"
    )
    maker.add_argument("output", help="bag folder to write, e.g. demo/atlas_demo")
    maker.add_argument("--seed", type=int, default=DEMO_SEED)
    maker.add_argument("--frames", type=int, default=DEMO_FRAMES)
    maker.add_argument("--overwrite", action="store_true")
    maker.set_defaults(func=run_make_bag)


def make_demo_bag(path, seed: int = DEMO_SEED, frames: int = DEMO_FRAMES, overwrite=False) -> Path:
    """Generate the demo scene (scene engine, ``seed``) and export it as an mcap bag with zstd
    chunk compression. Same arguments, same bag."""
    import tempfile

    from recon_ros.datasets.bag_export import export_bag
    from recon_ros.datasets.layout import SyntheticSequence
    from recon_ros.scenes.cameras import TrajectoryConfig
    from recon_ros.scenes.pipeline import GenerationConfig, generate_scene_folder

    width, height = DEMO_SIZE
    config = GenerationConfig(
        trajectory=TrajectoryConfig(kind="walk", frames=frames, frame_rate=5.0, speed=0.4),
        width=width,
        height=height,
        voxel_sizes=(),
        mesh_resolution=None,
    )
    with tempfile.TemporaryDirectory(prefix="recon_ros_demo_") as tmp:
        folder = Path(tmp) / "scene"
        generate_scene_folder(folder, seed, config)
        return export_bag(
            SyntheticSequence(folder), path, "mcap", overwrite=overwrite, compression="storage"
        )


def run_make_bag(args) -> int:
    path = make_demo_bag(args.output, args.seed, args.frames, args.overwrite)
    size = sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())
    print(f"wrote {path} ({size / 1e6:.1f} MB)")
    return 0


def run(args) -> int:
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    from recon_ros.core.atomic_io import atomic_write_bytes
    from recon_ros.io.bagfile import BagReader
    from recon_ros.io.mesh_images import render_overview, save_png
    from recon_ros.io.ply import read_ply
    from recon_ros.msg import AtlasStatus, FrameSufficiency
    from recon_ros.parameters import INPUT_PARAMS, load_params_file
    from recon_ros.ros.graph import NodeProcess, ObserverNode, images_accounted_for
    from recon_ros.srv import SaveMap

    started = time.monotonic()
    output = Path(args.output).resolve()
    output.mkdir(parents=True, exist_ok=True)
    logs = output / "logs"
    logs.mkdir(exist_ok=True)
    bag = Path(args.bag) if args.bag else default_demo_bag()
    image_topic, info_topic = "/camera/color/image_raw", "/camera/color/camera_info"
    with BagReader(bag) as reader:
        images_in_bag = reader.topics[image_topic].count
        bag_duration = (reader.end_ns - reader.start_ns) / 1e9
    print(f"demo: {bag.name}, {images_in_bag} images over {bag_duration:.1f} s, output {output}")

    config = installed_config()
    remaps = {"image": image_topic, "camera_info": info_topic}
    atlas_params = load_params_file(config, "atlas_node")
    # The demo is to show the whole bag mapped, so the player's reliable stream is subscribed
    # reliably and the queue holds all of it; on a robot, sensor-data QoS and the bounded queue
    # skip frames when integration falls behind.
    # The queue's declared maximum: a longer bag is played into a full queue (counted drops).
    max_queue = int(next(p for p in INPUT_PARAMS if p.name == "queue_size").value_range[1])
    atlas_params.update(
        output_directory=str(output),
        device=args.device,
        cnn_period_s=2.0,
        publish_period_s=0.5,
        queue_size=min(max(images_in_bag, 1), max_queue),
        image_qos="reliable",
    )
    sufficiency_params = load_params_file(config, "sufficiency_node")
    sufficiency_params.update(
        device=args.device, queue_size=min(max(images_in_bag, 1), max_queue), image_qos="reliable"
    )
    latched = QoSProfile(
        depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
    )

    observer = ObserverNode("recon_ros_demo")
    processes: list[NodeProcess] = []
    try:
        atlas = NodeProcess("atlas_node", logs / "atlas_node.log", atlas_params, remaps)
        sufficiency = NodeProcess(
            "sufficiency_node", logs / "sufficiency_node.log", sufficiency_params, remaps
        )
        processes += [atlas, sufficiency]
        status = observer.collect(AtlasStatus, "/atlas_node/status", latched)
        estimates = observer.collect(FrameSufficiency, "/sufficiency_node/sufficiency", latched)
        count_images = observer.collect(Image, "/sufficiency_node/count_image", latched)
        status.wait_for(lambda m, _: True, 120, "atlas_node to start", processes)
        print(f"demo: atlas_node up after {time.monotonic() - started:.1f} s; playing the bag")
        player = NodeProcess(
            "bag_player",
            logs / "bag_player.log",
            {
                "bag": str(bag),
                "rate": float(args.rate),
                "wait_for_subscribers": [image_topic],
                "wait_for_subscriber_count": 2,  # atlas_node and sufficiency_node
            },
        )
        processes.append(player)
        deadline = started + args.timeout
        while player.alive():
            if time.monotonic() > deadline:
                raise TimeoutError(f"the bag did not finish playing within {args.timeout} s")
            time.sleep(0.2)

        # Every image the node received accounted for, and all of them arrived or none for a
        # while (an image lost in transport must not hang the demo; the summary shows the count).
        final = status.wait_for(
            images_accounted_for(images_in_bag, quiet_s=15.0),
            max(deadline - time.monotonic(), 1.0),
            "all images processed",
            [atlas],
        )
        saved = observer.call(
            SaveMap, "/atlas_node/save_map", SaveMap.Request(name="demo"), timeout=300
        )
        if not saved.success:
            raise RuntimeError(f"save_map failed: {saved.message}")
        final = status.last
        mesh = read_ply(saved.mesh_path)
        render_path = output / "demo_render.png"
        save_png(
            render_path,
            render_overview(
                mesh["vertices"],
                mesh.get("faces", np.zeros((0, 3), int)),
                mesh["colors"],
                labels=mesh.get("label"),
            ),
        )
        last_estimate = estimates.last
        counts_path = None
        if count_images.last is not None:
            from recon_ros.io.image_conversions import image_to_rgb

            counts_path = output / "demo_sufficiency.png"
            save_png(counts_path, image_to_rgb(count_images.last))
    finally:
        for process in reversed(processes):
            process.stop()
        observer.close()

    report = demo_report(
        bag,
        images_in_bag,
        final,
        mesh,
        saved,
        render_path,
        last_estimate,
        estimates,
        counts_path,
        time.monotonic() - started,
    )
    atomic_write_bytes(output / "report.md", report.encode())
    print(report)
    ok = final.frames_integrated > 0 and len(mesh.get("faces", [])) > 0
    if not ok:
        print("demo: FAILED: nothing was reconstructed; see the logs in", logs)
    return 0 if ok else 1


def demo_report(
    bag, images, status, mesh, saved, render_path, estimate, estimates, counts_path, wall_s
) -> str:
    from recon_ros.core.classes import CLASS_NAMES

    drops = {d.reason: d.count for d in status.drops if d.count}
    missing = images - status.frames_received
    lost = f" ({missing} lost in transport)" if missing > 0 else ""
    labels, counts = np.unique(mesh.get("label", np.zeros(0, np.uint8)), return_counts=True)
    faces = len(mesh.get("faces", []))
    lines = [
        "# recon_ros demo",
        "",
        f"Bag `{bag.name}` ({images} images) played live into atlas_node and sufficiency_node "
        "over DDS.",
        "",
        f"- images received {status.frames_received}{lost}, integrated "
        f"{status.frames_integrated}, "
        f"skipped as not keyframes {status.frames_not_keyframes}, dropped "
        f"{status.frames_dropped} {drops or ''}",
        f"- map updates: {status.cnn_updates} on {status.device}; window "
        f"{[int(d) for d in status.volume_dims]} voxels of {status.voxel_size * 100:.1f} cm; "
        f"map chunks {status.map_chunks}",
        f"- window: {status.window_placement}",
        f"- mesh: {len(mesh['vertices'])} vertices, {faces} triangles -> "
        f"`{Path(saved.mesh_path).name}`; map -> `{Path(saved.map_path).name}/`; render -> "
        f"`{render_path.name}`",
    ]
    if estimate is not None:
        verdict = "sufficient" if estimate.sufficient else "insufficient"
        lines.append(
            f"- frame sufficiency: {len(estimates.messages)} estimates; last: score "
            f"{estimate.score:.2f} (pixels seen by >= {estimate.k} of {estimate.m} partners), "
            f"{verdict} at threshold {estimate.threshold:g}"
            + (f" -> `{counts_path.name}`" if counts_path else "")
        )
    lines += ["", "| stage | mean ms | runs |", "| --- | --- | --- |"]
    lines += [f"| {t.name} | {t.mean_ms:.1f} | {t.count} |" for t in status.timings]
    if len(labels):
        lines += ["", "| class | mesh vertices |", "| --- | --- |"]
        names = list(CLASS_NAMES)
        lines += [
            f"| {names[int(c)] if int(c) < len(names) else int(c)} | {n} |"
            for c, n in zip(labels, counts, strict=True)
        ]
    lines += ["", f"Wall time {wall_s:.0f} s. Node logs in `logs/`."]
    return "\n".join(lines) + "\n"
