"""Launch rig_node: a room watched by fixed cameras, its occupancy and object classes (Everted
U-Net).

    ros2 launch recon_ros rig.launch.py
    ros2 launch recon_ros rig.launch.py weights:=/path/everted.pt device:=cpu
    ros2 launch recon_ros rig.launch.py params_file:=/path/my_rig.yaml namespace:=cell1

The cameras' topics, the grid's placement in the room and the thresholds come from params_file
(config/atlas.yaml by default, section ``/**/rig_node``); ``weights`` and ``device`` override it
only when given. Uses no launch API newer than ROS 2 Humble.
"""

from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription

DEVICES = ("", "auto", "cpu", "cuda", *(f"cuda:{i}" for i in range(8)))


def _rig_node(context):
    overrides = {}
    weights = LaunchConfiguration("weights").perform(context)
    device = LaunchConfiguration("device").perform(context)
    if weights:
        overrides["weights_path"] = weights
    if device:
        overrides["device"] = device
    return [
        Node(
            package="recon_ros",
            executable="rig_node",
            name="rig_node",
            namespace=LaunchConfiguration("namespace"),
            parameters=[LaunchConfiguration("params_file"), overrides],
            arguments=["--ros-args", "--log-level", LaunchConfiguration("log_level")],
            output="screen",
        )
    ]


def generate_launch_description():
    default_params = PathJoinSubstitution([FindPackageShare("recon_ros"), "config", "atlas.yaml"])
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "params_file",
                default_value=default_params,
                description="Parameter file with a /**/rig_node section (default: atlas.yaml)",
            ),
            DeclareLaunchArgument(
                "weights", default_value="", description="Everted U-Net checkpoint (.pt)"
            ),
            DeclareLaunchArgument(
                "device", default_value="", choices=DEVICES, description="torch device"
            ),
            DeclareLaunchArgument("namespace", default_value="", description="node namespace"),
            DeclareLaunchArgument(
                "log_level",
                default_value="info",
                choices=("debug", "info", "warn", "error", "fatal"),
                description="logging level",
            ),
            OpaqueFunction(function=_rig_node),
        ]
    )
