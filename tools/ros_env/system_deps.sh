#!/usr/bin/env bash
# System pieces the virtual environment cannot carry: Debian's libusb for open3d, and the two
# paths that the ROS 2 PyPI wheels' CMake files name (they were built under /opt/python).
# Usage: system_deps.sh VENV_DIR
set -euo pipefail
venv=$(cd "$1" && pwd)

if ! ldconfig -p | grep -q 'libusb-1.0.so.0'; then
  if [ "$(id -u)" = 0 ]; then
    echo "installing libusb-1.0-0 (needed by open3d)"
    apt-get install -y -q libusb-1.0-0 >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q libusb-1.0-0 >/dev/null; }
  else
    echo "open3d needs libusb-1.0-0: run 'sudo apt-get install libusb-1.0-0'" >&2
    exit 1
  fi
fi

py_include=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
np_include=$("$venv/bin/python" -c 'import numpy; print(numpy.get_include())')
want_py=/opt/python/cp311-cp311/include/python3.11
want_np=/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include
link() {  # link TARGET NAME, unless NAME already resolves to TARGET
  if [ "$(readlink -f "$2" 2>/dev/null)" != "$(readlink -f "$1")" ]; then
    if ! mkdir -p "$(dirname "$2")" 2>/dev/null || ! ln -sfn "$1" "$2" 2>/dev/null; then
      echo "cannot create $2 -> $1 (run 'sudo $0 $venv' once)" >&2
      exit 1
    fi
  fi
}
link "$py_include" "$want_py"
link "$np_include" "$want_np"
