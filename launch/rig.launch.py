"""Launch rig_node: a room watched by fixed cameras, its occupancy and object classes (Everted
U-Net).

    ros2 launch recon_ros rig.launch.py
    ros2 launch recon_ros rig.launch.py weights:=/path/everted.pt device:=cpu
    ros2 launch recon_ros rig.launch.py params_file:=/path/my_rig.yaml namespace:=cell1

The cameras' topics, the grid's placement in the room and the thresholds come from params_file
(config/atlas.yaml by default, section ``/**/rig_node``); ``weights`` and ``device`` override it
only when given. Uses no launch API newer than ROS 2 Humble.
"""

from recon_ros.ros.launch_helpers import single_node_launch_description


def generate_launch_description():
    return single_node_launch_description("rig_node", "Everted U-Net checkpoint (.pt)")
