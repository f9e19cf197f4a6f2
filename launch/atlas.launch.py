"""Launch atlas_node and the frame-sufficiency node (and optionally RViz and a bag player).

    ros2 launch recon_ros atlas.launch.py
    ros2 launch recon_ros atlas.launch.py image_topic:=/camera/image_rect \
        camera_info_topic:=/camera/camera_info
    ros2 launch recon_ros atlas.launch.py bag:=/path/to/bag rviz:=true   # bag time (/clock)
    ros2 launch recon_ros atlas.launch.py depth_topic:=/camera/aligned_depth_to_color/image_raw \
        depth_camera_info_topic:=/camera/aligned_depth_to_color/camera_info   # an RGB-D camera
    ros2 launch recon_ros atlas.launch.py namespace:=robot1 world_frame:=map log_level:=debug

Parameters come from params_file (config/atlas.yaml by default, keyed ``/**/atlas_node`` so it
applies under any namespace); the weights, device, refinement and world_frame arguments override
it only when given. Uses no launch API newer than ROS 2 Humble; works on Humble, Jazzy and Kilted.
"""

import os
import tempfile

import yaml
from launch.actions import DeclareLaunchArgument, LogInfo, OpaqueFunction
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription

# launch argument -> node parameter, applied only when the argument is not empty
OVERRIDES = {
    "weights": "weights_path",
    "depth_weights": "depth_weights_path",
    "refine_weights": "refine_weights_path",
    "semantic_weights": "semantic_weights_path",
    "device": "device",
    "world_frame": "world_frame",
}
#: atlas_node-only parameters (not passed to sufficiency_node).
ATLAS_ONLY = (
    "weights_path",
    "depth_weights_path",
    "refine_weights_path",
    "semantic_weights_path",
    "refinement",
)
BOOLEAN = ("true", "false")
LOG_LEVELS = ("debug", "info", "warn", "error", "fatal")
DEVICES = ("", "auto", "cpu", "cuda", *(f"cuda:{i}" for i in range(8)))


def _is_true(value: str) -> bool:
    return value.strip().lower() in ("true", "1", "yes", "on")


def _params_world_frame(params_file: str) -> str:
    """world_frame as the parameter file sets it for atlas_node ("world" if it does not)."""
    try:
        with open(params_file) as file:
            data = yaml.safe_load(file) or {}
    except (OSError, yaml.YAMLError):
        return "world"
    frame = "world"
    for key in ("/**", "atlas_node", "/atlas_node", "/**/atlas_node"):
        section = (data.get(key) or {}).get("ros__parameters", {})
        frame = section.get("world_frame", frame)
    return str(frame)


def _rviz_config(template: str, namespace: str, image_topic: str, world_frame: str) -> str:
    """A copy of the RViz config whose displays follow the namespace, the image topic and the
    world frame of this launch."""
    with open(template) as file:
        text = file.read()
    prefix = f"/{namespace.strip('/')}" if namespace.strip("/") else ""
    for node in ("atlas_node", "sufficiency_node"):
        text = text.replace(f"Value: /{node}/", f"Value: {prefix}/{node}/")
    text = text.replace("Value: /camera/color/image_raw", f"Value: {image_topic}")
    text = text.replace("Fixed Frame: world", f"Fixed Frame: {world_frame}")
    handle, path = tempfile.mkstemp(prefix="recon_ros_", suffix=".rviz")
    with os.fdopen(handle, "w") as file:
        file.write(text)
    return path


def _rviz_installed() -> bool:
    try:
        from ament_index_python.packages import get_package_share_directory

        get_package_share_directory("rviz2")
    except (ImportError, LookupError):  # PackageNotFoundError is a KeyError
        return False
    return True


def _nodes(context):
    arg = {name: LaunchConfiguration(name).perform(context) for name in ARGUMENTS}
    # A bag is played with its clock: the nodes must follow it.
    use_sim_time = _is_true(arg["use_sim_time"]) or bool(arg["bag"])
    overrides = {param: arg[name] for name, param in OVERRIDES.items() if arg[name]}
    overrides["use_sim_time"] = use_sim_time
    namespace = arg["namespace"].strip("/")
    ros_arguments = ["--ros-args", "--log-level", arg["log_level"]]
    remappings = [
        ("image", arg["image_topic"]),
        ("image/compressed", f"{arg['image_topic']}/compressed"),  # image_transport "compressed"
        ("camera_info", arg["camera_info_topic"]),
        ("pose", arg["pose_topic"]),
        ("odometry", arg["odometry_topic"]),
    ]
    atlas_overrides = dict(overrides)
    if arg["refinement"]:
        atlas_overrides["refinement"] = _is_true(arg["refinement"])
    atlas_remappings = list(remappings)
    if arg["depth_topic"]:
        depth_info = arg["depth_camera_info_topic"] or (
            arg["depth_topic"].rsplit("/", 1)[0] + "/camera_info"
        )
        atlas_overrides["use_depth"] = True
        atlas_remappings += [("depth/image", arg["depth_topic"]), ("depth/camera_info", depth_info)]
    share = FindPackageShare("recon_ros").perform(context)
    actions = [
        Node(
            package="recon_ros",
            executable="atlas_node",
            name="atlas_node",
            namespace=namespace or None,
            parameters=[arg["params_file"], atlas_overrides],
            remappings=atlas_remappings,
            arguments=ros_arguments,
            output="screen",
            emulate_tty=True,
        )
    ]
    if _is_true(arg["sufficiency"]):
        sufficiency_overrides = {k: v for k, v in overrides.items() if k not in ATLAS_ONLY}
        actions.append(
            Node(
                package="recon_ros",
                executable="sufficiency_node",
                name="sufficiency_node",
                namespace=namespace or None,
                parameters=[arg["params_file"], sufficiency_overrides],
                remappings=remappings,
                arguments=ros_arguments,
                output="screen",
                emulate_tty=True,
            )
        )
    if _is_true(arg["rviz"]):
        if _rviz_installed():
            world_frame = arg["world_frame"] or _params_world_frame(arg["params_file"])
            config = _rviz_config(
                arg["rviz_config"] or f"{share}/config/atlas.rviz",
                namespace,
                arg["image_topic"],
                world_frame,
            )
            actions.append(
                Node(
                    package="rviz2",
                    executable="rviz2",
                    name="rviz2",
                    namespace=namespace or None,
                    arguments=["-d", config, "-f", world_frame],
                    parameters=[{"use_sim_time": use_sim_time}],
                )
            )
        else:
            actions.append(
                LogInfo(
                    msg="rviz:=true but rviz2 is not installed (apt install "
                    "ros-$ROS_DISTRO-rviz2): starting the nodes without it"
                )
            )
    if arg["bag"]:
        actions.append(
            Node(
                package="recon_ros",
                executable="bag_player",
                name="bag_player",
                namespace=namespace or None,
                parameters=[
                    {
                        "bag": arg["bag"],
                        "rate": float(arg["rate"]),
                        "clock": True,
                        "wait_for_subscribers": [arg["image_topic"]],
                    }
                ],
                output="screen",
            )
        )
    return actions


# name -> (default, description, choices or None)
ARGUMENTS = {
    "params_file": (
        "",
        "Parameter file of atlas_node and sufficiency_node (default: config/atlas.yaml)",
        None,
    ),
    "namespace": ("", "Namespace of the nodes (e.g. robot1); their parameters still apply", None),
    "log_level": ("info", "Log level of the nodes", LOG_LEVELS),
    "image_topic": (
        "/camera/color/image_raw",
        "Rectified colour image (rgb8, bgr8, mono8, ...)",
        None,
    ),
    "camera_info_topic": ("/camera/color/camera_info", "CameraInfo of that image", None),
    "pose_topic": ("pose", "PoseStamped topic (pose_source 'pose')", None),
    "odometry_topic": ("odometry", "Odometry topic (pose_source 'odometry')", None),
    "weights": (
        "",
        "Atlas checkpoint (pipeline atlas); empty: the params file's, else shipped",
        None,
    ),
    "depth_weights": (
        "",
        "Depth network checkpoint (pipeline fusion); empty: the params file's, else shipped",
        None,
    ),
    "refinement": (
        "",
        "true/false: mesh through the 3D refinement network (pipeline fusion); empty: the "
        "params file's",
        ("", *BOOLEAN),
    ),
    "refine_weights": (
        "",
        "3D refinement network checkpoint; empty: the params file's, else shipped",
        None,
    ),
    "semantic_weights": (
        "",
        "semantic network checkpoint (keyframe labels); empty: the params file's, else shipped",
        None,
    ),
    "depth_topic": (
        "",
        "An RGB-D camera's depth image (16UC1 mm or 32FC1 m); empty: colour only (stereo depth)",
        None,
    ),
    "depth_camera_info_topic": (
        "",
        "CameraInfo of the depth image; empty: camera_info beside depth_topic",
        None,
    ),
    "device": ("", "Torch device; empty: the params file's", DEVICES),
    "world_frame": ("", "Fixed frame of poses and outputs; empty: the params file's", None),
    "use_sim_time": ("false", "Follow /clock (always on with bag:=)", BOOLEAN),
    "sufficiency": ("true", "Run the frame-sufficiency node", BOOLEAN),
    "rviz": ("false", "Start RViz (warns and goes on where rviz2 is not installed)", BOOLEAN),
    "rviz_config": ("", "RViz config file; empty: config/atlas.rviz", None),
    "bag": (
        "",
        "Play this rosbag2 folder (sqlite3 or mcap) with recon_ros's bag_player and its clock; "
        "on a robot with ros2 installed, `ros2 bag play --clock` does the same",
        None,
    ),
    "rate": ("1.0", "Bag playback speed", None),
}


def generate_launch_description():
    declared = []
    config = PathJoinSubstitution([FindPackageShare("recon_ros"), "config", "atlas.yaml"])
    for name, (default, description, choices) in ARGUMENTS.items():
        value = config if name == "params_file" else default
        extra = {"choices": list(choices)} if choices else {}
        declared.append(
            DeclareLaunchArgument(name, default_value=value, description=description, **extra)
        )
    return LaunchDescription([*declared, OpaqueFunction(function=_nodes)])
