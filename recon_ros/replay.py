"""`recon-ros replay BAG`: reconstruct a rosbag2 offline with the same core, TF buffer, frame
decoding and parameters as atlas_node, and write the mesh (PLY), the semantic cloud (PLY), a PNG
render and a report. ROS-free: it runs from `pip install .` as well.

The bag's /tf and /tf_static are read first into a TransformBuffer that keeps the whole bag, so
every image finds its pose however the recorder interleaved the topics; then images are decoded,
gated and integrated in record order, with the 3D CNN run every ``cnn_period_s`` of bag time (as
the node does in sim time) and once at the end.
"""

from __future__ import annotations

import argparse
import collections
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from recon_ros import parameters
from recon_ros.conversions import stamp_to_ns
from recon_ros.frames import DROP_REASONS, FrameDropped, posed_frame
from recon_ros.ply import atomic_write_bytes, write_ply
from recon_ros.tf_buffer import TransformBuffer


@dataclass
class ReplayReport:
    bag: str
    images: int = 0
    integrated: int = 0
    not_keyframes: int = 0
    drops: dict[str, int] = field(default_factory=lambda: {r: 0 for r in DROP_REASONS})
    drop_examples: dict[str, str] = field(default_factory=dict)
    cnn_updates: int = 0
    vertices: int = 0
    triangles: int = 0
    semantic_points: int = 0
    label_histogram: dict[str, int] = field(default_factory=dict)
    timings_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    wall_time_s: float = 0.0
    outputs: dict[str, str] = field(default_factory=dict)
    weights: str = ""
    device: str = ""

    def markdown(self) -> str:
        lines = [
            f"# Replay of `{Path(self.bag).name}`",
            "",
            f"- weights: `{self.weights}` on {self.device}",
            f"- images: {self.images}; integrated {self.integrated}; skipped as not keyframes "
            f"{self.not_keyframes}; dropped {sum(self.drops.values())}",
            f"- 3D CNN runs: {self.cnn_updates}",
            f"- mesh: {self.vertices} vertices, {self.triangles} triangles; semantic points: "
            f"{self.semantic_points}",
            f"- wall time: {self.wall_time_s:.1f} s",
        ]
        dropped = {r: c for r, c in self.drops.items() if c}
        if dropped:
            lines += ["", "| drop reason | count | example |", "| --- | --- | --- |"]
            lines += [
                f"| {r} | {c} | {self.drop_examples.get(r, '')} |" for r, c in dropped.items()
            ]
        if self.label_histogram:
            lines += ["", "| class | semantic points |", "| --- | --- |"]
            lines += [f"| {name} | {count} |" for name, count in self.label_histogram.items()]
        if self.timings_ms:
            lines += ["", "| stage | mean ms | runs |", "| --- | --- | --- |"]
            lines += [
                f"| {n} | {t['mean_ms']:.1f} | {int(t['count'])} |"
                for n, t in self.timings_ms.items()
            ]
        lines += ["", "Outputs: " + ", ".join(f"`{Path(p).name}`" for p in self.outputs.values())]
        return "\n".join(lines) + "\n"


def load_transforms(bag, topics=("/tf", "/tf_static")) -> tuple[TransformBuffer, list[str]]:
    """A TransformBuffer holding every transform of the bag, and the problems met."""
    duration_s = max((bag.end_ns - bag.start_ns) / 1e9, 0.0)
    buffer = TransformBuffer(cache_time_s=duration_s + 3600.0)
    problems = []
    for topic, _, _, msg in bag.messages([t for t in topics if t in bag.topics]):
        problems += buffer.set_tf_message(msg, static=topic.endswith("_static"))
    return buffer, problems


def replay_bag(
    bag_path: str | Path,
    output: str | Path,
    params: dict | None = None,
    image_topic: str = "/camera/color/image_raw",
    camera_info_topic: str = "/camera/color/camera_info",
    render: bool = True,
    progress: bool = True,
    log=print,
) -> ReplayReport:
    """Reconstruct ``bag_path`` into the folder ``output``; ``params`` are atlas_node parameters
    (defaults for the rest). Returns the report (also written as report.md and report.json)."""
    from tqdm import tqdm

    from recon_ros.bagfile import BagReader
    from recon_ros.core.classes import CLASS_NAMES
    from recon_ros.core.reconstructor import AtlasReconstructor, ReconstructorConfig
    from recon_ros.weights import default_atlas_weights

    values = parameters.resolve(params)
    if values["pose_source"] != "tf":
        raise ValueError("replay takes poses from the bag's /tf and /tf_static (pose_source 'tf')")
    weights = (
        Path(values["weights_path"]).expanduser()
        if values["weights_path"]
        else default_atlas_weights()
    )
    config = ReconstructorConfig.from_dict(parameters.core_config_dict(values))
    reconstructor = AtlasReconstructor(weights, config)
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    report = ReplayReport(bag=str(bag_path), weights=str(weights), device=str(reconstructor.device))
    started = time.monotonic()
    world, camera_frame = values["world_frame"], values["camera_frame"]
    cnn_period_ns = int(values["cnn_period_s"] * 1e9)

    with BagReader(bag_path) as bag:
        for topic in (image_topic, camera_info_topic):
            if topic not in bag.topics:
                raise ValueError(f"bag has no topic '{topic}' (topics: {', '.join(bag.topics)})")
        tf, problems = load_transforms(bag)
        for problem in collections.Counter(problems):
            log(f"warning: ignored a transform in the bag: {problem}")

        def lookup(frame_id: str, stamp_ns: int) -> np.ndarray:
            return tf.lookup(world, frame_id, stamp_ns)

        info = None
        last_update_ns = None
        dirty = False
        count = bag.topics[image_topic].count
        bar = tqdm(total=count, desc="replay", unit="img", disable=not progress)
        for topic, _, _, msg in bag.messages([image_topic, camera_info_topic]):
            if topic == camera_info_topic:
                info = msg
                continue
            report.images += 1
            bar.update(1)
            try:
                frame = posed_frame(msg, info, lookup, camera_frame, f" on '{camera_info_topic}'")
                result = reconstructor.integrate(
                    frame.rgb, frame.camera.K, frame.T_world_cam, frame.stamp_ns * 1e-9
                )
            except FrameDropped as dropped:
                report.drops[dropped.reason] += 1
                report.drop_examples.setdefault(dropped.reason, dropped.detail)
                continue
            except ValueError as error:
                report.drops["rejected"] += 1
                report.drop_examples.setdefault("rejected", str(error))
                continue
            if not result.integrated:
                report.not_keyframes += 1
                continue
            report.integrated += 1
            dirty = True
            stamp_ns = stamp_to_ns(msg.header.stamp)
            last_update_ns = stamp_ns if last_update_ns is None else last_update_ns
            if stamp_ns - last_update_ns >= cnn_period_ns:
                reconstructor.update()
                report.cnn_updates += 1
                last_update_ns, dirty = stamp_ns, False
        bar.close()
    if dirty:
        reconstructor.update()
        report.cnn_updates += 1
    for reason, count in report.drops.items():
        if count:
            log(f"warning: dropped {count} images [{reason}], e.g. {report.drop_examples[reason]}")

    mesh = reconstructor.mesh(color_by=values["mesh_color_mode"])
    points = reconstructor.semantic_points()
    report.vertices, report.triangles = len(mesh.vertices), len(mesh.faces)
    report.semantic_points = len(points.xyz)
    labels, counts = np.unique(np.asarray(points.label), return_counts=True)
    names = list(CLASS_NAMES)
    report.label_histogram = {
        (names[int(label)] if int(label) < len(names) else str(int(label))): int(n)
        for label, n in zip(labels, counts, strict=True)
    }
    report.outputs["mesh"] = str(
        write_ply(
            output / "mesh.ply",
            mesh.vertices,
            mesh.faces,
            mesh.colors,
            label=np.asarray(mesh.labels, np.uint8),
            confidence=np.asarray(mesh.confidence, np.float32),
        )
    )
    report.outputs["semantic_cloud"] = str(
        write_ply(
            output / "semantic_cloud.ply",
            points.xyz,
            colors=points.rgb,
            label=np.asarray(points.label, np.uint8),
            confidence=np.asarray(points.confidence, np.float32),
        )
    )
    if render:
        from recon_ros.render import render_overview, save_png

        save_png(output / "render.png", render_overview(mesh.vertices, mesh.faces, mesh.colors))
        report.outputs["render"] = str(output / "render.png")
    report.timings_ms = {
        name: {"mean_ms": float(t.mean_ms), "count": float(t.count)}
        for name, t in reconstructor.stats.timings.items()
    }
    report.wall_time_s = time.monotonic() - started
    report.outputs["report"] = str(output / "report.md")
    atomic_write_bytes(output / "report.json", json.dumps(report.__dict__, indent=2).encode())
    atomic_write_bytes(output / "report.md", report.markdown().encode())
    return report


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "replay",
        help="reconstruct a rosbag2 offline: mesh, semantic cloud, PNG render, report",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("bag", help="rosbag2 folder (sqlite3 or mcap)")
    parser.add_argument("-o", "--output", required=True, help="output folder")
    parser.add_argument(
        "--params-file", help="ROS 2 parameter file with atlas_node parameters (config/atlas.yaml)"
    )
    parser.add_argument("--weights", help="Atlas checkpoint (default: the shipped weights)")
    parser.add_argument("--device", help="cpu, cuda or auto")
    parser.add_argument("--image-topic", default="/camera/color/image_raw")
    parser.add_argument("--camera-info-topic", default="/camera/color/camera_info")
    parser.add_argument(
        "--world-frame", help="fixed frame (default: world_frame of the parameters)"
    )
    parser.add_argument("--no-render", action="store_true", help="skip the PNG render")
    parser.set_defaults(func=run)


def run(args) -> int:
    params = parameters.load_params_file(args.params_file) if args.params_file else {}
    for key, value in (
        ("weights_path", args.weights),
        ("device", args.device),
        ("world_frame", args.world_frame),
    ):
        if value:
            params[key] = value
    report = replay_bag(
        args.bag,
        args.output,
        params,
        image_topic=args.image_topic,
        camera_info_topic=args.camera_info_topic,
        render=not args.no_render,
    )
    print(report.markdown())
    return 0 if report.integrated else 1
