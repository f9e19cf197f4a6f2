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
from recon_ros.core.atomic_io import atomic_write_bytes
from recon_ros.io.ply import write_ply
from recon_ros.io.posed_frames import (
    DEPTH_STAMP_TOLERANCE_NS,
    DROP_REASONS,
    FrameDropped,
    attach_depth,
    describe,
    posed_frame,
)
from recon_ros.io.tf_buffer import MAX_TRANSLATION_M, TransformBuffer
from recon_ros.io.transform_conversions import stamp_to_ns


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
    window: str = ""
    refinement: str = ""
    warnings: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        lines = [
            f"# Replay of `{Path(self.bag).name}`",
            "",
            f"- reconstruction: {self.weights} on {self.device}",
            f"- window: {self.window}",
            f"- {self.refinement}",
            *(f"- **WARNING: {w}**" for w in self.warnings),
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


def load_transforms(
    bag,
    topics=("/tf", "/tf_static"),
    max_translation_m: float = MAX_TRANSLATION_M,
    root_frame: str | None = None,
) -> tuple[TransformBuffer, list[str]]:
    """A TransformBuffer holding every transform of the bag, and the problems met;
    ``root_frame``: the world frame, never given a dynamic parent (as atlas_node's)."""
    duration_s = max((bag.end_ns - bag.start_ns) / 1e9, 0.0)
    buffer = TransformBuffer(
        cache_time_s=duration_s + 3600.0, max_translation_m=max_translation_m, root_frame=root_frame
    )
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
    depth_topic: str | None = None,
    depth_info_topic: str | None = None,
) -> ReplayReport:
    """Reconstruct ``bag_path`` into the folder ``output``; ``params`` are atlas_node parameters
    (defaults for the rest). With ``depth_topic`` (an RGB-D camera's depth image, and its
    CameraInfo on ``depth_info_topic``) each image gets the depth of the same stamp (within
    ``frames.DEPTH_STAMP_TOLERANCE_NS``). Returns the report (also written as report.md and
    report.json)."""
    from tqdm import tqdm

    from recon_ros.io.bag_salvage import readable_bag
    from recon_ros.reconstruction import MappingPipeline

    values = parameters.resolve(params)
    if values["pose_source"] != "tf":
        raise ValueError("replay takes poses from the bag's /tf and /tf_static (pose_source 'tf')")
    pipeline = MappingPipeline(values)
    reconstructor, description = pipeline.reconstructor, pipeline.description
    for warning in pipeline.warnings:
        log(f"WARNING: {warning}")
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    report = ReplayReport(bag=str(bag_path), weights=description, device=str(reconstructor.device))
    started = time.monotonic()
    world, camera_frame = values["world_frame"], values["camera_frame"]

    with readable_bag(bag_path) as (bag, damage):
        if damage:
            report.warnings.append(f"{damage}: the map holds what was read")
            log(f"WARNING: {damage}")
        wanted = [image_topic, camera_info_topic] + ([depth_topic] if depth_topic else [])
        for topic in wanted:
            if topic not in bag.topics:
                raise ValueError(f"bag has no topic '{topic}' (topics: {', '.join(bag.topics)})")
        if depth_info_topic and depth_info_topic not in bag.topics:
            raise ValueError(f"bag has no topic '{depth_info_topic}'")
        tf, problems = load_transforms(
            bag, max_translation_m=float(values["tf_max_translation_m"]), root_frame=world
        )
        for problem in collections.Counter(problems):
            log(f"warning: ignored a transform in the bag: {problem}")

        def lookup(frame_id: str, stamp_ns: int) -> np.ndarray:
            return tf.lookup(world, frame_id, stamp_ns)

        def extrinsics(colour_frame: str, depth_frame: str, stamp_ns: int) -> np.ndarray:
            return tf.lookup(colour_frame, depth_frame, stamp_ns)

        depth_stamps = (
            np.array(
                sorted(stamp_to_ns(m.header.stamp) for _, _, _, m in bag.messages([depth_topic]))
            )
            if depth_topic
            else np.zeros(0, np.int64)
        )
        state = {"info": None, "depth_info": None}
        depth_buffer: dict[int, object] = {}
        pending: collections.deque = collections.deque()

        def matching_depth_stamp(stamp_ns: int) -> int | None:
            if depth_stamps.size == 0:
                return None
            i = int(np.argmin(np.abs(depth_stamps - stamp_ns)))
            nearest = int(depth_stamps[i])
            return nearest if abs(nearest - stamp_ns) <= DEPTH_STAMP_TOLERANCE_NS else None

        def process(msg, depth_msg) -> None:
            try:
                max_pixels = int(values["max_image_pixels"])
                frame = posed_frame(
                    msg,
                    state["info"],
                    lookup,
                    camera_frame,
                    f" on '{camera_info_topic}'",
                    max_pixels,
                )
                if depth_msg is not None:
                    attach_depth(frame, depth_msg, state["depth_info"], extrinsics, max_pixels)
                elif depth_topic and values["depth_source"] == "sensor":
                    raise FrameDropped(
                        "no_depth", f"{describe(msg)}: no depth image within 20 ms of its stamp"
                    )
                result = pipeline.offer(frame)
            except FrameDropped as dropped:
                report.drops[dropped.reason] += 1
                report.drop_examples.setdefault(dropped.reason, dropped.detail)
                return
            except ValueError as error:
                report.drops["rejected"] += 1
                report.drop_examples.setdefault("rejected", str(error))
                return
            if result.integrated:  # the map hand-over at cnn_period_s of bag time
                pipeline.update_at(frame.stamp_ns)

        def flush(final: bool = False) -> None:
            # Images wait (in bag order) for the depth of their stamp; the rest go on without.
            while pending:
                msg, depth_stamp = pending[0]
                if depth_stamp is not None and depth_stamp not in depth_buffer and not final:
                    return
                pending.popleft()
                process(msg, depth_buffer.pop(depth_stamp, None) if depth_stamp else None)

        count = bag.topics[image_topic].count
        bar = tqdm(total=count, desc="replay", unit="img", disable=not progress)
        topics = [t for t in (*wanted, depth_info_topic) if t]
        for topic, _, _, msg in bag.messages(topics):
            if topic == camera_info_topic:
                state["info"] = msg
                if depth_info_topic == camera_info_topic:
                    state["depth_info"] = msg
                continue
            if topic == depth_info_topic:
                state["depth_info"] = msg
                continue
            if topic == depth_topic:
                depth_buffer[stamp_to_ns(msg.header.stamp)] = msg
                flush()
                continue
            report.images += 1
            bar.update(1)
            pending.append((msg, matching_depth_stamp(stamp_to_ns(msg.header.stamp))))
            flush()
        flush(final=True)
        bar.close()
    pipeline.update()  # the frames since the last hand-over
    report.integrated, report.not_keyframes, report.cnn_updates = pipeline.counts()
    for reason, count in report.drops.items():
        if count:
            log(f"warning: dropped {count} images [{reason}], e.g. {report.drop_examples[reason]}")

    report.window = reconstructor.window_note
    report.refinement = reconstructor.refinement_note
    log(f"window: {report.window}")
    mesh = reconstructor.mesh(color_by=values["mesh_color_mode"])
    points = reconstructor.semantic_points()
    report.vertices, report.triangles = len(mesh.vertices), len(mesh.faces)
    report.semantic_points = len(points.xyz)
    labels, counts = np.unique(np.asarray(points.label), return_counts=True)
    names = list(reconstructor.class_names)
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
        from recon_ros.io.mesh_images import render_overview, save_png

        save_png(
            output / "render.png",
            render_overview(mesh.vertices, mesh.faces, mesh.colors, labels=mesh.labels),
        )
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
    parser.add_argument(
        "--weights", help="Atlas checkpoint, atlas pipeline (default: the shipped weights)"
    )
    parser.add_argument(
        "--depth-weights", help="depth network checkpoint, fusion pipeline (default: shipped)"
    )
    parser.add_argument(
        "--semantic-weights", help="semantic network checkpoint (default: the shipped one)"
    )
    parser.add_argument(
        "--labels-from",
        choices=("combined", "semantic_network", "depth_network"),
        help="where keyframe labels come from (default: the parameters' 'labels_from')",
    )
    parser.add_argument(
        "--refinement",
        choices=("on", "off"),
        help="3D refinement network on top of fusion (default: the parameters' 'refinement')",
    )
    parser.add_argument(
        "--refine-weights", help="3D refinement network checkpoint (default: the shipped one)"
    )
    parser.add_argument(
        "--refinement-mode", choices=("labels", "full"), help="what the refinement changes"
    )
    parser.add_argument("--device", help="cpu, cuda or auto")
    parser.add_argument("--image-topic", default="/camera/color/image_raw")
    parser.add_argument("--camera-info-topic", default="/camera/color/camera_info")
    parser.add_argument(
        "--depth-topic",
        help="an RGB-D camera's depth image (16UC1 mm or 32FC1 m), fused instead of stereo depth",
    )
    parser.add_argument(
        "--depth-camera-info-topic",
        help="CameraInfo of the depth image (default: <depth topic's folder>/camera_info when the "
        "bag has it; none needed for depth registered to the colour image)",
    )
    parser.add_argument(
        "--world-frame", help="fixed frame (default: world_frame of the parameters)"
    )
    parser.add_argument("--no-render", action="store_true", help="skip the PNG render")
    parser.set_defaults(func=run)


def depth_info_topic(args) -> str | None:
    """The depth CameraInfo topic: as given, else the sibling ``camera_info`` of the depth
    topic (``/camera/depth/image_raw`` -> ``/camera/depth/camera_info``) if the bag has it."""
    if args.depth_camera_info_topic or not args.depth_topic:
        return args.depth_camera_info_topic
    from recon_ros.io.bag_salvage import readable_bag

    sibling = args.depth_topic.rsplit("/", 1)[0] + "/camera_info"
    with readable_bag(args.bag) as (bag, _):
        return sibling if sibling in bag.topics else None


def run(args) -> int:
    params = parameters.load_params_file(args.params_file) if args.params_file else {}
    for key, value in (
        ("weights_path", args.weights),
        ("depth_weights_path", args.depth_weights),
        ("refine_weights_path", args.refine_weights),
        ("semantic_weights_path", args.semantic_weights),
        ("labels_from", args.labels_from),
        ("device", args.device),
        ("world_frame", args.world_frame),
    ):
        if value:
            params[key] = value
    if args.refinement:
        params["refinement"] = args.refinement == "on"
    if args.refinement_mode:
        params["refinement_mode"] = args.refinement_mode
    report = replay_bag(
        args.bag,
        args.output,
        params,
        image_topic=args.image_topic,
        camera_info_topic=args.camera_info_topic,
        render=not args.no_render,
        depth_topic=args.depth_topic,
        depth_info_topic=depth_info_topic(args),
    )
    print(report.markdown())
    return 0 if report.integrated else 1
