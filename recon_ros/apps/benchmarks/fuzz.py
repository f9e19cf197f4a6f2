"""``recon-ros bench-fuzz``: malformed input of every kind against a live atlas_node over DDS.

Messages, by kind (seeded): raw images with wrong encodings, sizes, steps, data lengths, headers
declaring huge sizes, and random bytes; compressed images with random bytes and PNG headers
declaring gigapixels; CameraInfo with absurd sizes, ROI offsets, focal lengths and NaN; /tf with
NaN, non-unit quaternions, equal or empty frames, far-future stamps and world re-parented under
the camera; interleaved with good frames. Afterwards the node must be alive, its worker never
restarted, every image accounted for (received = integrated + not keyframes + dropped), and good
frames still mapped. Prints messages sent by kind, worker restarts, unaccounted frames and peak
RSS of the node; exit status 1 if any of the checks fails.

    recon-ros bench-fuzz --messages 10000 --seed 0      # results: bench/fuzz.md
"""

from __future__ import annotations

import argparse
import array
import collections
import math
import struct
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

from recon_ros.io import camera_info_conversions, image_conversions, transform_conversions

KINDS = ("image", "compressed", "camera_info", "tf", "good_frame")
#: Seconds without a newly accounted image after which the run fails (the node stalled).
STALL_S = 120.0
SMALL_NODE = {
    "world_frame": "world",
    "tf_timeout_s": 0.3,
    "queue_size": 1000,
    "image_qos": "reliable",
    "log_throttle_s": 5.0,
    "device": "cpu",
    "voxel_size_m": 0.08,
    "window_dims": [32, 32, 32],
    "chunk_size": 8,
    "keyframe_min_translation_m": 0.0,
    "keyframe_min_rotation_deg": 0.0,
    "cnn_period_s": 0.5,
    "publish_period_s": 0.2,
    "image_transport": "raw",
}


def png_declaring(width: int, height: int) -> bytes:
    """A 1x1 PNG whose header claims ``width`` x ``height`` (valid CRC)."""
    import io

    from PIL import Image as PILImage

    buffer = io.BytesIO()
    PILImage.new("RGB", (1, 1)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    ihdr = data.index(b"IHDR")
    data[ihdr + 4 : ihdr + 12] = struct.pack(">II", width, height)
    data[ihdr + 17 : ihdr + 21] = struct.pack(">I", zlib.crc32(bytes(data[ihdr : ihdr + 17])))
    return bytes(data)


class Fuzzer:
    """Builds malformed messages (rclpy types) from a seeded generator."""

    def __init__(self, seed: int, camera, stamp_of) -> None:
        self.rng = np.random.default_rng(seed)
        self.camera = camera
        self.stamp_of = stamp_of

    def image(self, t: float):

        rng = self.rng
        rgb = rng.integers(0, 256, (self.camera.height, self.camera.width, 3), dtype=np.uint8)
        msg = image_conversions.rgb_to_image_msg(rgb, self.stamp_of(t), "cam")
        case = int(rng.integers(8))
        if case == 0:
            msg.encoding = str(rng.choice(["yuv422", "", "rgb16", "bayer_rggb8", "32FC1"]))
        elif case == 1:
            msg.height, msg.width = 9216, 12288  # declares 113 M pixels
        elif case == 2:
            msg.step = int(rng.integers(0, 3 * self.camera.width))
        elif case == 3:
            msg.data = array.array("B", rng.integers(0, 256, int(rng.integers(0, 5000)), np.uint8))
        elif case == 4:
            msg.height, msg.width, msg.step = 3, 4, 12
            msg.data = array.array("B", bytes(36))
        elif case == 5:
            msg.header.frame_id = str(rng.choice(["", "/", "no_such_frame", "world"]))
        elif case == 6:
            msg.is_bigendian = 1
            msg.encoding = "mono16"
        else:
            msg.height = 0
        return msg

    def compressed(self, t: float):
        from sensor_msgs.msg import CompressedImage

        rng = self.rng
        msg = CompressedImage()
        msg.header.stamp = self.stamp_of(t)
        msg.header.frame_id = "cam"
        msg.format = str(rng.choice(["jpeg", "png", "rgb8; jpeg compressed rgb8", ""]))
        case = int(rng.integers(3))
        if case == 0:
            data = png_declaring(int(rng.integers(20000, 60000)), int(rng.integers(20000, 60000)))
        elif case == 1:
            data = rng.integers(0, 256, int(rng.integers(0, 3000)), np.uint8).tobytes()
        else:
            data = b"\xff\xd8\xff" + rng.integers(0, 256, 200, np.uint8).tobytes()  # broken JPEG
        msg.data = array.array("B", data)
        return msg

    def camera_info(self, t: float):

        rng = self.rng
        msg = camera_info_conversions.camera_info_msg(self.camera, self.stamp_of(t), "cam")
        case = int(rng.integers(6))
        if case == 0:
            msg.width = msg.height = 4294967295
        elif case == 1:
            msg.roi.x_offset = msg.roi.y_offset = 4294967295
        elif case == 2:
            msg.k[0] = float(rng.choice([0.0, -1.0, 1e38, math.nan, math.inf]))
        elif case == 3:
            msg.k[8] = 0.0
        elif case == 4:
            msg.binning_x = int(rng.integers(0, 1000))
        else:
            msg.d = [float(v) for v in rng.normal(0, 10, 5)]
            msg.distortion_model = "plumb_bob"
        return msg

    def tf(self, t: float):
        from tf2_msgs.msg import TFMessage

        rng = self.rng
        T = np.eye(4)
        case = int(rng.integers(6))
        stamp = self.stamp_of(t)
        parent, child = "world", "cam"
        if case == 0:
            T[0, 3] = math.nan
        elif case == 1:
            T[:3, 3] = rng.choice([1e18, 1e38, -1e30])
        elif case == 2:
            ahead = time.time() + float(rng.uniform(1e3, 1e8))
            stamp = self.stamp_of(min(ahead, 2**31 - 1))  # far future (no wrap-around)
        elif case == 3:
            parent, child = "cam", "world"  # world re-parented under the camera
        elif case == 4:
            parent, child = "cam", "cam"
        else:
            parent = ""
        transform = transform_conversions.matrix_to_transform_stamped(T, stamp, parent, child)
        if case == 5:
            transform.transform.rotation.w = 7.0  # not a unit quaternion
        return TFMessage(transforms=[transform])


def run_fuzz(messages: int, seed: int, workdir: Path, log=print, transport: str = "raw") -> dict:
    """Start atlas_node subscribing to ``transport`` images (``raw`` or ``compressed``), send
    ``messages`` malformed messages (and good frames among them) and check the node. Returns
    the figures (see module docstring)."""
    from builtin_interfaces.msg import Time
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo, CompressedImage, Image
    from tf2_msgs.msg import TFMessage

    from recon_ros.core.camera import PinholeCamera
    from recon_ros.io.mesh_images import look_at
    from recon_ros.msg import AtlasStatus
    from recon_ros.ros.graph import NodeProcess, ObserverNode, images_accounted_for

    def stamp_of(t: float) -> Time:
        return Time(sec=int(t), nanosec=min(round((t % 1) * 1e9), 999_999_999))

    camera = PinholeCamera(fx=80.0, fy=80.0, cx=63.5, cy=47.5, width=128, height=96)
    reliable = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE)
    latched = QoSProfile(
        depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
    )
    observer = ObserverNode(f"fuzz_{seed}")
    node = NodeProcess(
        "atlas_node",
        workdir / f"atlas_node_{transport}.log",
        {**SMALL_NODE, "image_transport": transport},
        {
            "image": "/fuzz/image",
            "image/compressed": "/fuzz/image/compressed",
            "camera_info": "/fuzz/camera_info",
        },
    )
    figures: dict = {
        "sent": collections.Counter(),
        "messages": messages,
        "seed": seed,
        "transport": transport,
    }
    image_kind = "compressed" if transport == "compressed" else "image"
    try:
        status = observer.collect(AtlasStatus, "/atlas_node/status", latched)
        diagnostics = observer.collect(DiagnosticArray, "/diagnostics", reliable)
        status.wait_for(lambda m, _: True, 120, "atlas_node to come up", [node])
        pubs = {
            "image": observer.node.create_publisher(Image, "/fuzz/image", reliable),
            "compressed": observer.node.create_publisher(
                CompressedImage, "/fuzz/image/compressed", reliable
            ),
            "camera_info": observer.node.create_publisher(
                CameraInfo, "/fuzz/camera_info", reliable
            ),
            "tf": observer.node.create_publisher(TFMessage, "/tf", reliable),
        }
        deadline = time.monotonic() + 30
        while min(pubs[k].get_subscription_count() for k in (image_kind, "camera_info", "tf")) == 0:
            if time.monotonic() > deadline:
                raise TimeoutError("atlas_node did not subscribe")
            time.sleep(0.05)
        time.sleep(0.5)
        fuzzer = Fuzzer(seed, camera, stamp_of)
        rng = np.random.default_rng(seed + 1)
        good_images = 0
        t = 100.0
        for i in range(messages):
            t += 0.01
            kind = KINDS[int(rng.integers(len(KINDS)))]
            if kind in ("image", "compressed"):
                kind = image_kind  # the transport the node listens to
            if kind == "good_frame" or i == messages - 1:
                # a good frame: pose, CameraInfo and image at one stamp, the camera moving
                T = look_at([-1.0 + 0.002 * i, 0.0, 1.2], [1.0, 0.0, 1.0])
                pubs["tf"].publish(
                    TFMessage(
                        transforms=[
                            transform_conversions.matrix_to_transform_stamped(
                                T, stamp_of(t), "world", "cam"
                            )
                        ]
                    )
                )
                pubs["camera_info"].publish(
                    camera_info_conversions.camera_info_msg(camera, stamp_of(t), "cam")
                )
                rgb = rng.integers(0, 256, (camera.height, camera.width, 3), dtype=np.uint8)
                if transport == "compressed":
                    pubs["compressed"].publish(
                        image_conversions.rgb_to_compressed_msg(rgb, stamp_of(t), "cam", "png")
                    )
                else:
                    pubs["image"].publish(
                        image_conversions.rgb_to_image_msg(rgb, stamp_of(t), "cam")
                    )
                good_images += 1
                figures["sent"]["good_frame"] += 1
                continue
            pubs[kind].publish(getattr(fuzzer, kind)(t))
            figures["sent"][kind] += 1
            time.sleep(0.003)  # a camera's pace, not a burst the reader's history would drop
        images_sent = figures["sent"][image_kind] + good_images

        # Settled: every image the node received is accounted for and no more arrive (images a
        # loaded reader's DDS history overwrote never reached the node; reported, not counted).
        settled = images_accounted_for(images_sent, quiet_s=3.0, stall_s=STALL_S)
        final = status.wait_for(settled, 6 * 3600, "every image accounted for", [node])
        time.sleep(1.0)
        last = diagnostics.last
        values = {kv.key: kv.value for kv in last.status[0].values} if last else {}
        drops = {d.reason: d.count for d in final.drops if d.count}
        figures.update(
            alive=node.alive(),
            images_sent=images_sent,
            received=final.frames_received,
            integrated=final.frames_integrated,
            unaccounted=final.frames_received
            - final.frames_integrated
            - final.frames_not_keyframes
            - final.frames_dropped,
            worker_restarts=int(values.get("worker_restarts", -1)),
            internal_errors=drops.get("internal_error", 0),
            drops=drops,
            peak_rss_mib=float(values.get("rss_mib", "nan")),
            traceback="Traceback" in node.log(),
        )
    finally:
        node.stop()
        observer.close()
    log(format_figures(figures))
    return figures


def passed(figures: dict) -> bool:
    return (
        figures["alive"]
        and figures["worker_restarts"] == 0
        and figures["internal_errors"] == 0
        and figures["unaccounted"] == 0
        and figures["integrated"] > 0
        and not figures["traceback"]
    )


def format_figures(f: dict) -> str:
    sent = ", ".join(f"{k} {v}" for k, v in sorted(f["sent"].items()))
    return "\n".join(
        [
            f"fuzz seed {f['seed']}, {f['transport']} images: {f['messages']} messages ({sent})",
            f"  images sent {f.get('images_sent')}, received {f.get('received')} (the rest lost "
            f"in transport), integrated "
            f"{f.get('integrated')}, unaccounted {f.get('unaccounted')} (must be 0)",
            f"  worker restarts {f.get('worker_restarts')} (must be 0), internal errors "
            f"{f.get('internal_errors')} (must be 0), tracebacks in the log: {f.get('traceback')}",
            f"  drops by reason: {f.get('drops')}",
            f"  node RSS at the end: {f.get('peak_rss_mib')} MiB; alive: {f.get('alive')}",
            f"  verdict: {'PASS' if passed(f) else 'FAIL'}",
        ]
    )


def run(args: argparse.Namespace) -> int:
    verdicts = []
    with tempfile.TemporaryDirectory(prefix="recon_fuzz_") as workdir:
        for transport in ("raw", "compressed"):
            figures = run_fuzz(args.messages // 2, args.seed, Path(workdir), transport=transport)
            verdicts.append(passed(figures))
    return 0 if all(verdicts) else 1


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "bench-fuzz",
        help="malformed input against a live atlas_node over DDS",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(func=run)
    return parser
