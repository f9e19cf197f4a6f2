#!/usr/bin/env python3
"""Atlas core speed: milliseconds per frame (feature extraction, back-projection, window shift),
per update (3D CNN, merge), meshing and peak memory on the CPU (and CUDA when present), with the
back-projection speed-up over the brute-force reference measured in the same run.

    .venv/bin/python bench/atlas_core.py [--device cpu|cuda|auto|all] [--frames N] [--json PATH]

Same code as ``recon-ros bench``; results are recorded in bench/atlas_core.md.
"""

import sys
from pathlib import Path

try:
    import recon_ros  # noqa: F401 (an installed package wins)
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recon_ros.apps.benchmarks.atlas import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
