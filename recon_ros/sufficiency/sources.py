"""Where the command line gets sequences from: dataset folders (``recon_ros.datasets`` loaders:
generated scenes, ScanNet, 7-Scenes, TUM RGB-D) or the built-in toy scenes (``synthetic``), for
smoke runs."""

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from recon_ros.sufficiency.synthetic import ToySequence


def toy_sequences(
    count: int, seed: int = 0, num_frames: int = 24, hw: tuple[int, int] = (120, 160)
) -> list[ToySequence]:
    """``count`` toy sequences with seeds ``seed, seed + 1, ...``."""
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    return [ToySequence(seed + i, num_frames=num_frames, hw=hw) for i in range(count)]


def _layout(folder: Path) -> str | None:
    if (folder / "scene.json").is_file():
        return "synthetic"
    if all((folder / d).is_dir() for d in ("color", "depth", "pose", "intrinsic")):
        return "scannet"
    if (folder / "rgb.txt").is_file():
        return "tum"
    if any(folder.glob("frame-*.color.png")):
        return "7scenes"
    return None


def open_sequence(folder: str | Path) -> Any:
    """One sequence folder: a generated scene (``scene.json``), a ScanNet export, a TUM RGB-D
    sequence (``rgb.txt``) or a 7-Scenes ``seq-XX`` folder.

    Raises:
        ValueError: the folder is none of these.
    """
    from recon_ros.datasets.layout import SyntheticSequence
    from recon_ros.datasets.real import ScanNetSequence, SevenScenesSequence, TUMSequence

    folder = Path(folder)
    loaders = {
        "synthetic": SyntheticSequence,
        "scannet": ScanNetSequence,
        "tum": TUMSequence,
        "7scenes": SevenScenesSequence,
    }
    layout = _layout(folder) if folder.is_dir() else None
    if layout is None:
        raise ValueError(f"data: {folder} is no generated, ScanNet, 7-Scenes or TUM folder")
    return loaders[layout](folder)


def open_sequences(paths: Sequence[str | Path]) -> list[Any]:
    """Sequences of ``paths``: each a sequence folder, or a folder whose sub-folders are (a
    generated data set's root), taken in sorted order.

    Raises:
        ValueError: a path that is neither.
    """
    sequences = []
    for path in map(Path, paths):
        if not path.is_dir():
            raise ValueError(f"data: {path} is not a folder")
        if _layout(path) is not None:
            sequences.append(open_sequence(path))
            continue
        children = [p for p in sorted(path.iterdir()) if p.is_dir() and not p.name.startswith(".")]
        found = [open_sequence(p) for p in children if _layout(p) is not None]
        if not found:
            raise ValueError(f"data: no sequence folders in {path}")
        sequences.extend(found)
    return sequences


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    """``--data`` and ``--toy`` options shared by train and evaluate."""
    parser.add_argument(
        "--data",
        nargs="*",
        default=[],
        metavar="DIR",
        help="sequence folders (generated scene, ScanNet, 7-Scenes, TUM) or folders of them",
    )
    parser.add_argument(
        "--toy", type=int, default=0, metavar="N", help="add N built-in toy sequences (smoke runs)"
    )
    parser.add_argument("--toy-seed", type=int, default=0, help="seed of the first toy sequence")
    parser.add_argument("--toy-frames", type=int, default=24, help="frames per toy sequence")


def sequences_from_args(args: argparse.Namespace) -> list[Any]:
    """The sequences named by :func:`add_source_arguments` options."""
    sequences = open_sequences(args.data) + toy_sequences(args.toy, args.toy_seed, args.toy_frames)
    if not sequences:
        raise ValueError("no sequences: give --data DIR ... and/or --toy N")
    return sequences
