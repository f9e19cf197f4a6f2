#!/usr/bin/env python3
"""Frame-sufficiency speed: estimates per second at 300x300 on the CPU (and CUDA when present),
against the geometric label computation measured in the same run.

    .venv/bin/python bench/sufficiency.py [--iterations N] [--device cpu|cuda|auto]

Results are recorded in bench/sufficiency.md.
"""

import argparse
import sys
from pathlib import Path

try:
    import recon_ros  # noqa: F401 (an installed package wins)
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recon_ros.apps.benchmarks.sufficiency import add_parser


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["bench-sufficiency", *sys.argv[1:]])
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
