"""The launch description of a node that runs alone with one checkpoint (rig_node, ifnet_node):
its parameters from a parameter file, ``weights`` and ``device`` overriding them only when
given, topic remappings as launch arguments, a namespace and a log level. Uses no launch API
newer than ROS 2 Humble."""

from __future__ import annotations

from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription

DEVICES = ("", "auto", "cpu", "cuda", *(f"cuda:{i}" for i in range(8)))
LOG_LEVELS = ("debug", "info", "warn", "error", "fatal")


def single_node_launch_description(
    executable: str,
    weights_description: str,
    topics: dict[str, tuple[str, str]] | None = None,
) -> LaunchDescription:
    """Launch ``executable`` (also its node name) of recon_ros.

    Args:
        executable: the node's executable and name.
        weights_description: what the ``weights`` argument names.
        topics: remapped topic -> (default, description); each becomes the launch argument
            ``<topic>_topic``.
    """
    topics = topics or {}

    def node(context):
        overrides = {}
        for argument, parameter in (("weights", "weights_path"), ("device", "device")):
            value = LaunchConfiguration(argument).perform(context)
            if value:
                overrides[parameter] = value
        return [
            Node(
                package="recon_ros",
                executable=executable,
                name=executable,
                namespace=LaunchConfiguration("namespace"),
                parameters=[LaunchConfiguration("params_file"), overrides],
                remappings=[(topic, LaunchConfiguration(f"{topic}_topic")) for topic in topics],
                arguments=["--ros-args", "--log-level", LaunchConfiguration("log_level")],
                output="screen",
            )
        ]

    default_params = PathJoinSubstitution([FindPackageShare("recon_ros"), "config", "atlas.yaml"])
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "params_file",
                default_value=default_params,
                description=f"Parameter file with a /**/{executable} section (default: atlas.yaml)",
            ),
            DeclareLaunchArgument("weights", default_value="", description=weights_description),
            *(
                DeclareLaunchArgument(f"{topic}_topic", default_value=default, description=text)
                for topic, (default, text) in topics.items()
            ),
            DeclareLaunchArgument(
                "device", default_value="", choices=DEVICES, description="torch device"
            ),
            DeclareLaunchArgument("namespace", default_value="", description="node namespace"),
            DeclareLaunchArgument(
                "log_level", default_value="info", choices=LOG_LEVELS, description="logging level"
            ),
            OpaqueFunction(function=node),
        ]
    )
