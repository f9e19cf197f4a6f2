"""`pip install .`: the ROS-free library and the `recon-ros` command line, for machines without ROS.

On a robot, build with colcon instead (package.xml, CMakeLists.txt): that install also carries the
message definitions (recon_ros.msg, recon_ros.srv) and the ROS 2 nodes.
"""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
REQUIREMENTS = [
    line.strip()
    for line in (HERE / "requirements" / "base.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#")
]

setup(
    name="recon_ros",
    version="0.1.0",
    description="Live, labelled 3D reconstruction from posed RGB images (Atlas) for ROS 2",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["recon_ros", "recon_ros.*"]),
    package_data={"recon_ros": ["weights/*", "configs/*"]},
    install_requires=REQUIREMENTS,
    entry_points={"console_scripts": ["recon-ros = recon_ros.apps.cli:main"]},
)
