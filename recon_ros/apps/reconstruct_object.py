"""`recon-ros reconstruct-object IMAGES... -o mesh.ply`: one object's whole shape from a few views
of it (the trained 3D-R2N2), as object_node's ``~/reconstruct_object`` service does, without ROS.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "reconstruct-object",
        help="one object's whole shape from a few views of it (3D-R2N2): mesh PLY, occupancy",
    )
    parser.add_argument("images", nargs="+", type=Path, help="1 or more views (PNG, JPEG)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="mesh PLY to write")
    parser.add_argument(
        "--masks",
        nargs="+",
        type=Path,
        default=None,
        help="one mask image per view (non-zero on the object): each view is cut to its object",
    )
    parser.add_argument("--weights", type=Path, default=None, help="3D-R2N2 checkpoint")
    parser.add_argument("--size-m", type=float, default=1.0, help="edge of the object's cube")
    parser.add_argument("--threshold", type=float, default=0.4, help="occupancy threshold")
    parser.add_argument("--occupancy", type=Path, default=None, help="also write the .npy grid")
    parser.add_argument("--device", default="cpu")
    parser.set_defaults(func=run)


def run(args) -> int:
    import numpy as np
    from PIL import Image

    from recon_ros.core.atomic_io import atomic_write_bytes
    from recon_ros.io.ply import write_ply
    from recon_ros.r2n2.reconstruct import reconstruct_object
    from recon_ros.r2n2.train import load_r2n2
    from recon_ros.weights import default_r2n2_weights

    def fail(text: str) -> int:
        print(f"recon-ros reconstruct-object: {text}", file=sys.stderr)
        return 2

    if args.masks is not None and len(args.masks) != len(args.images):
        return fail(f"{len(args.masks)} masks for {len(args.images)} images (one per image)")
    try:
        weights = args.weights or default_r2n2_weights()
        model, _ = load_r2n2(weights, args.device)
        images = [np.asarray(Image.open(path).convert("RGB")) for path in args.images]
        masks = None
        if args.masks is not None:
            masks = [np.asarray(Image.open(path).convert("L")) > 0 for path in args.masks]
        result = reconstruct_object(model, images, masks, args.threshold, args.size_m)
    except (OSError, ValueError) as error:  # missing or unreadable files, bad masks, bad weights
        return fail(str(error))
    mesh = result.mesh
    write_ply(args.output, mesh.vertices, mesh.faces, mesh.colors)
    if args.occupancy is not None:
        buffer = io.BytesIO()
        np.save(buffer, result.occupancy)
        atomic_write_bytes(args.occupancy, buffer.getvalue())
    occupied = int((result.occupancy >= args.threshold).sum())
    print(
        f"{result.views} views -> {occupied} occupied voxels of {result.occupancy.size}, "
        f"{mesh.num_faces} triangles in {args.output}"
    )
    return 0
