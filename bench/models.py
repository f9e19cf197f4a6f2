#!/usr/bin/env python3
"""Inference speed of the seed models (3D-R2N2, Everted U-Net, IF-Net) per call on the CPU (and
CUDA when present), the 3D-R2N2 against the seed's widths measured in the same run.

    .venv/bin/python bench/models.py [--models r2n2 everted ifnet] [--iterations N]

Results are recorded in bench/models.md.
"""

import argparse
import sys
from pathlib import Path

try:
    import recon_ros  # noqa: F401 (an installed package wins)
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recon_ros.apps.benchmarks.models import add_parser


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["bench-models", *sys.argv[1:]])
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
