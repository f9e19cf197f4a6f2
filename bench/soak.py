#!/usr/bin/env python3
"""Memory over a long run of the same bag (the demo bag by default):

    .venv/bin/python bench/soak.py [--minutes M] [--threads T]

Same code as ``recon-ros bench-soak``; results are recorded in bench/soak.md.
"""

import argparse
import sys
from pathlib import Path

try:
    import recon_ros  # noqa: F401 (an installed package wins)
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recon_ros.apps.benchmarks.soak import add_parser

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="soak")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["bench-soak", *sys.argv[1:]])
    sys.exit(args.func(args))
