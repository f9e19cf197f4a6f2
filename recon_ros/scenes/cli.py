"""``recon-ros generate``: a synthetic dataset of N scenes, generated in parallel.

Scene ``i`` gets the seed ``scene_seed(seed, i)`` and the folder ``scene_{i:04d}`` under the
output folder, so any scene can be regenerated alone (``--start-index i --scenes 1``) and the
result does not depend on the number of workers. Existing complete scene folders are kept unless
``--overwrite``. ``dataset.json`` in the output folder lists the scenes, their seeds and the
settings.

Example::

    recon-ros generate data/synthetic --scenes 100 --seed 7 --frames 60 --voxel-sizes 0.04 0.08
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
from pathlib import Path

from recon_ros.datasets.io import write_text
from recon_ros.scenes.cameras import TrajectoryConfig
from recon_ros.scenes.pipeline import GenerationConfig, generate_scene_folder
from recon_ros.scenes.render import SensorConfig
from recon_ros.scenes.room import RoomConfig
from recon_ros.scenes.scene import GENERATOR_VERSION, SceneConfig, scene_seed


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``generate`` subcommand on ``subparsers``."""
    parser = subparsers.add_parser(
        "generate",
        help="generate synthetic indoor scenes (images, labels, ground-truth volumes, meshes)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("output", type=Path, help="dataset folder to write scene_NNNN folders into")
    parser.add_argument(
        "-n", "--scenes", type=int, default=10, help="number of scenes (default 10)"
    )
    parser.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    parser.add_argument(
        "--objects",
        type=int,
        default=0,
        help="instead of scenes: this many object-centric samples for the 3D-R2N2 (classes in "
        "turn; --object-views views each)",
    )
    parser.add_argument("--object-views", type=int, default=5, help="views per object sample")
    parser.add_argument("--start-index", type=int, default=0, help="index of the first scene")
    parser.add_argument(
        "-j",
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="parallel processes (default: all cores)",
    )
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument(
        "--fx", type=float, default=None, help="focal length in pixels (default 525 * width / 640)"
    )
    parser.add_argument(
        "--frames", type=int, default=100, help="frames per scene for --trajectory walk"
    )
    parser.add_argument("--frame-rate", type=float, default=10.0, help="Hz (default 10)")
    parser.add_argument(
        "--speed", type=float, default=0.4, help="camera speed in m/s (default 0.4)"
    )
    parser.add_argument(
        "--trajectory", choices=("walk", "rig"), default="walk", help="moving camera or fixed rig"
    )
    parser.add_argument(
        "--rig-cameras", type=int, default=3, help="cameras of --trajectory rig (default 3)"
    )
    parser.add_argument(
        "--studio",
        action="store_true",
        help="with --trajectory rig: one installation, as the Everted U-Net paper's studio: a "
        "5 x 6 x 4 m room (the 80 x 96 x 64 grid at 6.25 cm, rig_node's default placement) and "
        "the rig's cameras at fixed places up to mounting tolerances; objects, materials and "
        "lights still vary",
    )
    parser.add_argument(
        "--voxel-sizes",
        type=float,
        nargs="*",
        default=[0.04],
        help="ground-truth voxel sizes in m (default 0.04)",
    )
    parser.add_argument(
        "--truncation-voxels", type=float, default=3.0, help="TSDF truncation in voxels"
    )
    parser.add_argument(
        "--paper-volumes", action="store_true", help="also write the Everted U-Net 80x96x64 volumes"
    )
    parser.add_argument(
        "--mesh-method",
        choices=("union", "marching_cubes"),
        default="union",
        help="reference mesh: exact union of the primitives (default) or marching cubes",
    )
    parser.add_argument(
        "--mesh-resolution",
        type=float,
        default=0.01,
        help="seam edge (union) or voxel size (marching cubes) of the mesh in m (default 0.01)",
    )
    parser.add_argument("--no-mesh", action="store_true", help="skip the reference mesh")
    parser.add_argument(
        "--bag",
        choices=("mcap", "sqlite3"),
        default=None,
        help="also export each scene as a rosbag2",
    )
    parser.add_argument(
        "--variants",
        choices=("all", "train", "held_out"),
        default="all",
        help="object shapes to draw: all (default), train (one variant per class kept out) or "
        "held_out (only those: test data with shapes training never saw)",
    )
    parser.add_argument("--no-shadows", action="store_true")
    parser.add_argument("--noise", type=float, default=0.0, help="image noise std in 8-bit levels")
    parser.add_argument("--blur", type=float, default=0.0, help="image blur std in pixels")
    parser.add_argument(
        "--exposure-jitter", type=float, default=0.0, help="std of per-frame log exposure"
    )
    parser.add_argument("--antialias", type=int, default=1, help="k x k colour samples per pixel")
    parser.add_argument(
        "--overwrite", action="store_true", help="regenerate existing scene folders"
    )
    parser.set_defaults(func=run)
    return parser


#: ``--studio``: the room and the rig of one installation (see its help)
STUDIO_ROOM = RoomConfig(size_x=(5.0, 5.0), size_y=(6.0, 6.0), height=(4.0, 4.0))
STUDIO_RIG = dict(rig_phase=45.0, rig_height=(2.3, 2.5), rig_jitter=0.15)


def config_from_args(args: argparse.Namespace) -> GenerationConfig:
    """The ``GenerationConfig`` the command-line options describe."""
    studio = getattr(args, "studio", False)
    if studio and args.trajectory != "rig":
        raise SystemExit("--studio: needs --trajectory rig")
    trajectory = TrajectoryConfig(
        kind=args.trajectory,
        frames=args.frames,
        frame_rate=args.frame_rate,
        speed=args.speed,
        rig_cameras=args.rig_cameras,
        **(STUDIO_RIG if studio else {}),
    )
    sensor = SensorConfig(
        noise_sigma=args.noise,
        blur_sigma=args.blur,
        exposure_jitter=args.exposure_jitter,
        antialias=args.antialias,
    )
    return GenerationConfig(
        scene=SceneConfig(room=STUDIO_ROOM if studio else RoomConfig(), variant_set=args.variants),
        trajectory=trajectory,
        sensor=sensor,
        width=args.width,
        height=args.height,
        fx=args.fx,
        voxel_sizes=tuple(args.voxel_sizes),
        truncation_voxels=args.truncation_voxels,
        paper_volumes=args.paper_volumes,
        mesh_method=args.mesh_method,
        mesh_resolution=None if args.no_mesh else args.mesh_resolution,
        shadows=not args.no_shadows,
        bag_storage=args.bag,
    )


def _generate_task(task: tuple) -> tuple[int, str]:
    """Worker: generate one scene (one core per worker)."""
    index, folder, seed, config, overwrite, threads = task
    if Path(folder, "scene.json").is_file() and not overwrite:
        return index, "kept"
    generate_scene_folder(folder, seed, config, overwrite=True, threads=threads)
    return index, "generated"


def generate_dataset(
    output: str | os.PathLike,
    scenes: int,
    seed: int = 0,
    config: GenerationConfig | None = None,
    *,
    start_index: int = 0,
    workers: int = 1,
    overwrite: bool = False,
    show_progress: bool = True,
) -> list[Path]:
    """Generate scenes ``start_index`` ... ``start_index + scenes - 1`` into ``output``.

    Returns the scene folders in index order."""
    if scenes < 0 or start_index < 0:
        raise ValueError(f"scenes, start_index: must be non-negative, got {scenes}, {start_index}")
    if workers < 1:
        raise ValueError(f"workers: need at least one, got {workers}")
    config = config or GenerationConfig()
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    indices = list(range(start_index, start_index + scenes))
    threads = 0 if workers == 1 else 1
    tasks = [
        (i, str(output / f"scene_{i:04d}"), scene_seed(seed, i), config, overwrite, threads)
        for i in indices
    ]
    from tqdm import tqdm

    bar = tqdm(total=len(tasks), desc="scenes", unit="scene", disable=not show_progress)
    try:
        if workers == 1 or len(tasks) <= 1:
            for task in tasks:
                _generate_task(task)
                bar.update(1)
        else:
            context = multiprocessing.get_context("spawn")
            with context.Pool(min(workers, len(tasks))) as pool:
                for _ in pool.imap_unordered(_generate_task, tasks):
                    bar.update(1)
    finally:
        bar.close()
    _write_index(output, seed, config)
    return [Path(t[1]) for t in tasks]


def _write_index(output: Path, seed: int, config: GenerationConfig) -> None:
    """``dataset.json``: every scene folder under ``output`` with its seed."""
    entries = []
    for folder in sorted(p for p in output.glob("scene_*") if (p / "scene.json").is_file()):
        meta = json.loads((folder / "scene.json").read_text(encoding="utf8"))
        entries.append(
            {"folder": folder.name, "seed": meta["seed"], "frames": meta["frames"]["count"]}
        )
    index = {
        "format": "recon_ros.synthetic_dataset",
        "generator_version": GENERATOR_VERSION,
        "base_seed": int(seed),
        "config": config.to_dict(),
        "scenes": entries,
    }
    write_text(output / "dataset.json", json.dumps(index, indent=1) + "\n")


def run(args: argparse.Namespace) -> int:
    """Entry point of ``recon-ros generate``."""
    if args.objects:
        from recon_ros.r2n2.data import write_object_samples

        count = write_object_samples(
            args.output, args.objects, args.seed, args.object_views, variant_set=args.variants
        )
        print(f"{count} object samples in {args.output}")
        return 0
    try:
        config = config_from_args(args)
    except ValueError as error:
        print(f"recon-ros generate: {error}", file=sys.stderr)
        return 2
    folders = generate_dataset(
        args.output,
        args.scenes,
        args.seed,
        config,
        start_index=args.start_index,
        workers=args.workers,
        overwrite=args.overwrite,
    )
    print(f"{len(folders)} scenes in {args.output}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run ``generate`` as a stand-alone command (``python -m recon_ros.scenes.cli``)."""
    parser = argparse.ArgumentParser(prog="recon-ros")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
