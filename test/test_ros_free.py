"""The ROS-free packages import, and work, where rclpy and the message packages do not exist:
the algorithm, its I/O and training run on machines without ROS (a laptop, a GPU box), as the
house rules say (only ``recon_ros.ros`` and the apps that start nodes need rclpy)."""

import subprocess
import sys

ROS_FREE = (
    "recon_ros.core",
    "recon_ros.io",
    "recon_ros.datasets",
    "recon_ros.scenes",
    "recon_ros.depth",
    "recon_ros.refine",
    "recon_ros.sufficiency",
    "recon_ros.training",
    "recon_ros.weights",
    "recon_ros.parameters",
    "recon_ros.reconstruction",
)

SCRIPT = """
import importlib, importlib.abc, pkgutil, sys

BLOCKED = ("rclpy", "rosidl_runtime_py", "rpyutils", "builtin_interfaces", "std_msgs",
           "sensor_msgs", "geometry_msgs", "visualization_msgs", "nav_msgs", "tf2_msgs",
           "diagnostic_msgs", "rcl_interfaces", "rosgraph_msgs", "recon_ros.msg",
           "recon_ros.srv", "recon_ros.ros", "recon_ros.apps")

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if any(name == b or name.startswith(b + ".") for b in BLOCKED):
            raise ImportError(f"blocked in this test: {name}")
        return None

sys.meta_path.insert(0, Block())
names = []
for root in sys.argv[1:]:
    module = importlib.import_module(root)
    names.append(root)
    for info in pkgutil.walk_packages(getattr(module, "__path__", []), root + "."):
        importlib.import_module(info.name)
        names.append(info.name)
# and they work: a conversion without any message class, a reconstruction config
from recon_ros.io.transform_conversions import stamp_to_ns
from recon_ros.reconstruction import MappingPipeline  # noqa: F401
class Stamp:
    sec, nanosec = 3, 5
assert stamp_to_ns(Stamp()) == 3_000_000_005
print(len(names))
"""


def test_ros_free_packages_import_without_ros():
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, *ROS_FREE],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert int(result.stdout.split()[-1]) > 60  # every module of those packages was imported
