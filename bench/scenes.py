#!/usr/bin/env python3
"""Synthetic scene engine speed: frames rendered per second (against bare ray casting), seconds
per stage of one scene, and scenes per minute with one process and in parallel, at the
generator's default settings.

    .venv/bin/python bench/scenes.py [--scenes N] [--workers N] [--frames N]

Same code as ``recon-ros bench-scenes``; results are recorded in bench/scenes.md.
"""

import sys
from pathlib import Path

try:
    import recon_ros  # noqa: F401 (an installed package wins)
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recon_ros.apps.benchmarks.scenes import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
