"""`recon-ros`: the command line of recon_ros, one entry point with subcommands.

Each subcommand lives in its own module, which exposes ``add_parser(subparsers)`` (or
``add_train_parser`` / ``add_evaluate_parser`` for the models' training and evaluation) and sets
``func``. Only the module of the command being run is imported: `recon-ros --help` stays quick,
and a problem in one command's module cannot break the others. Subcommands that need ROS (play,
demo) import rclpy only when run, so the others work from a plain ``pip install .``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# command -> (module, one-line help); a module may register further commands of its own
COMMANDS = {
    "demo": ("recon_ros.apps.demo", "play the demo bag live into the nodes; save, render, report"),
    "make-demo-bag": (
        "recon_ros.apps.demo",
        "generate the demo scene and write it as the demo bag",
    ),
    "replay": ("recon_ros.apps.replay", "reconstruct a rosbag2 offline: mesh, cloud, PNG, report"),
    "play": ("recon_ros.apps.play", "publish a rosbag2 into the ROS graph at its recorded rate"),
    "generate": ("recon_ros.scenes.cli", "generate synthetic indoor scenes (images, labels, GT)"),
    "bench": (
        "recon_ros.apps.benchmarks.fusion",
        "benchmark the reconstruction per stage (fusion; --pipeline atlas)",
    ),
    "bench-scenes": ("recon_ros.apps.benchmarks.scenes", "benchmark the scene engine"),
    "bench-sufficiency": (
        "recon_ros.apps.benchmarks.sufficiency",
        "benchmark the sufficiency estimate",
    ),
    "bench-fuzz": ("recon_ros.apps.benchmarks.fuzz", "malformed input against a live atlas_node"),
    "bench-soak": ("recon_ros.apps.benchmarks.soak", "memory over a long run of the same bag"),
    "bench-models": (
        "recon_ros.apps.benchmarks.models",
        "inference speed of the seed models (3D-R2N2, Everted U-Net, IF-Net)",
    ),
    "reconstruct-object": (
        "recon_ros.apps.reconstruct_object",
        "one object's whole shape from a few views of it (3D-R2N2)",
    ),
}
# model -> module, for `recon-ros train MODEL` and `recon-ros evaluate MODEL`
TRAINERS = {
    "atlas": "recon_ros.training.atlas_train",
    "sufficiency": "recon_ros.sufficiency.train",
    "depth": "recon_ros.depth.train",
    "semantic": "recon_ros.semantic.train",
    "refiner": "recon_ros.refine.train",
    "ifnet": "recon_ros.ifnet.train",
    "everted-unet": "recon_ros.everted.train",
    "r2n2": "recon_ros.r2n2.train",
}
EVALUATORS = {
    "atlas": "recon_ros.training.atlas_evaluate",
    "sufficiency": "recon_ros.sufficiency.evaluate",
    "semantic": "recon_ros.semantic.train",
    "ifnet": "recon_ros.ifnet.train",
    "everted-unet": "recon_ros.everted.train",
    "r2n2": "recon_ros.r2n2.train",
}


def _first_positional(argv: list[str]) -> str | None:
    return next((a for a in argv if not a.startswith("-")), None)


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser, with the full arguments of the command named in ``argv`` (all commands'
    names and help otherwise)."""
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(
        prog="recon-ros",
        description="Live, labelled 3D reconstruction from posed RGB images (Atlas) for ROS 2.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    wanted = _first_positional(argv)
    if wanted in COMMANDS:
        importlib.import_module(COMMANDS[wanted][0]).add_parser(subparsers)
    for name, (_, text) in COMMANDS.items():
        if name not in subparsers.choices:
            subparsers.add_parser(name, help=text)
    for group, registry, hook, text in (
        ("train", TRAINERS, "add_train_parser", "train a model on generated scenes"),
        ("evaluate", EVALUATORS, "add_evaluate_parser", "evaluate a checkpoint on scenes"),
    ):
        models = subparsers.add_parser(group, help=text).add_subparsers(
            dest="model", required=True, metavar="MODEL"
        )
        if wanted == group:
            model = _first_positional(argv[argv.index(group) + 1 :])
            if model in registry:
                getattr(importlib.import_module(registry[model]), hook)(models)
        for model in registry:
            if model not in models.choices:
                models.add_parser(model, help=f"{group} the {model} model")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    if not hasattr(args, "func"):  # a command listed for --help only; cannot happen once chosen
        build_parser(argv).print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except (ValueError, FileNotFoundError) as error:
        print(f"recon-ros {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
