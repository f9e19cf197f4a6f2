"""Launch ifnet_node: the scene in front of the camera from each image alone (single-view depth
U-Net + IF-Net), its predicted depth and completed mesh.

    ros2 launch recon_ros ifnet.launch.py weights:=/path/ifnet.pt
    ros2 launch recon_ros ifnet.launch.py image_topic:=/camera/image_rect \
        camera_info_topic:=/camera/camera_info device:=cpu

Rate and threshold come from params_file (config/atlas.yaml by default, section
``/**/ifnet_node``); ``weights`` and ``device`` override it only when given. Uses no launch API
newer than ROS 2 Humble.
"""

from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription

DEVICES = ("", "auto", "cpu", "cuda", *(f"cuda:{i}" for i in range(8)))


def _ifnet_node(context):
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
            executable="ifnet_node",
            name="ifnet_node",
            namespace=LaunchConfiguration("namespace"),
            parameters=[LaunchConfiguration("params_file"), overrides],
            remappings=[
                ("image", LaunchConfiguration("image_topic")),
                ("camera_info", LaunchConfiguration("camera_info_topic")),
            ],
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
                description="Parameter file with a /**/ifnet_node section (default: atlas.yaml)",
            ),
            DeclareLaunchArgument(
                "weights", default_value="", description="single-view IF-Net checkpoint (.pt)"
            ),
            DeclareLaunchArgument(
                "image_topic", default_value="/camera/color/image_raw", description="colour images"
            ),
            DeclareLaunchArgument(
                "camera_info_topic",
                default_value="/camera/color/camera_info",
                description="their CameraInfo",
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
            OpaqueFunction(function=_ifnet_node),
        ]
    )
