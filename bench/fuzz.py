#!/usr/bin/env python3
"""Malformed input against a live atlas_node over DDS (needs the ROS environment):

    .venv/bin/python bench/fuzz.py [--messages N] [--seed S]

Same code as ``recon-ros bench-fuzz``; results are recorded in bench/fuzz.md.
"""

import argparse
import sys
from pathlib import Path

try:
    import recon_ros  # noqa: F401 (an installed package wins)
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recon_ros.apps.benchmarks.fuzz import add_parser

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="fuzz")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["bench-fuzz", *sys.argv[1:]])
    sys.exit(args.func(args))
