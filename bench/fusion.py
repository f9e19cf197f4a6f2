#!/usr/bin/env python3
"""Speed and memory of the default fusion pipeline: per keyframe the depth network and the fusion
(label voting alone too), per update the hand-over to the map and meshing, RSS after 100 and 1000
keyframes of a long walk, and in the same run the ratios against Open3D's UniformTSDFVolume and
against the brute-force plane-sweep reference.

    .venv/bin/python bench/fusion.py [--device cpu|cuda|auto|all] [--frames N] [--json PATH]

Same code as ``recon-ros bench``; results are recorded in bench/fusion.md.
"""

import argparse
import sys
from pathlib import Path

try:
    import recon_ros  # noqa: F401 (an installed package wins)
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recon_ros.apps.benchmarks.fusion import add_parser

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="fusion")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["bench", *sys.argv[1:]])
    sys.exit(args.func(args))
