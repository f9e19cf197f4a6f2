"""nav_msgs/OccupancyGrid from the map's 2D slice (``core.occupancy``).

Readers are duck-typed: they take rclpy messages and the messages ``rosbags`` deserialises from a
bag alike. Builders import the rclpy message classes lazily, so this module imports without
ROS. Readers raise ``ValueError`` saying what is wrong with the input; the nodes log it and
drop the frame.
"""

from __future__ import annotations

import array

import numpy as np

from recon_ros.core.geometry import matrix_to_quaternion


def occupancy_grid_msg(cells, origin, rotation, resolution: float, stamp, frame_id: str):
    """A nav_msgs/OccupancyGrid of ``cells`` (H, W) int8 (100 occupied, 0 free, -1 unknown; row
    0 first, columns along the grid's x), whose cell (0, 0) has its corner at ``origin`` (3,)
    and whose axes are the columns of ``rotation`` (3, 3), in ``frame_id``."""
    from geometry_msgs.msg import Point, Pose, Quaternion
    from nav_msgs.msg import OccupancyGrid

    cells = np.asarray(cells, dtype=np.int8)
    if cells.ndim != 2:
        raise ValueError(f"occupancy cells: expected (H, W), got {cells.shape}")
    qx, qy, qz, qw = matrix_to_quaternion(np.asarray(rotation, dtype=np.float64))
    msg = OccupancyGrid()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.info.map_load_time = stamp
    msg.info.resolution = float(resolution)
    msg.info.height, msg.info.width = (int(v) for v in cells.shape)
    msg.info.origin = Pose(
        position=Point(x=float(origin[0]), y=float(origin[1]), z=float(origin[2])),
        orientation=Quaternion(x=float(qx), y=float(qy), z=float(qz), w=float(qw)),
    )
    msg.data = array.array("b", cells.tobytes())
    return msg
