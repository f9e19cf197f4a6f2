"""`recon-ros`: the command line of recon_ros, one entry point with subcommands.

Each subcommand lives in its own module, which exposes ``add_parser(subparsers)`` (or
``add_train_parser`` / ``add_evaluate_parser`` for the models' training and evaluation) and sets
``func``. Subcommands that need ROS (play, demo) import rclpy only when run, so the others work
from a plain ``pip install .``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

SUBCOMMANDS = (
    "recon_ros.demo",
    "recon_ros.replay",
    "recon_ros.play",
    "recon_ros.scenes.cli",
    "recon_ros.benchmarks.atlas",
    "recon_ros.benchmarks.scenes",
    "recon_ros.benchmarks.sufficiency",
)
TRAINERS = ("recon_ros.training.atlas_train", "recon_ros.sufficiency.train")
EVALUATORS = ("recon_ros.training.atlas_evaluate", "recon_ros.sufficiency.evaluate")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="recon-ros",
        description="Live, labelled 3D reconstruction from posed RGB images (Atlas) for ROS 2.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(name).add_parser(subparsers)
    train = subparsers.add_parser("train", help="train a model on generated scenes")
    train_models = train.add_subparsers(dest="model", required=True, metavar="MODEL")
    for name in TRAINERS:
        importlib.import_module(name).add_train_parser(train_models)
    evaluate = subparsers.add_parser("evaluate", help="evaluate a checkpoint on a folder of scenes")
    evaluate_models = evaluate.add_subparsers(dest="model", required=True, metavar="MODEL")
    for name in EVALUATORS:
        importlib.import_module(name).add_evaluate_parser(evaluate_models)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except (ValueError, FileNotFoundError) as error:
        print(f"recon-ros {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
