"""Launch atlas_node and the frame-sufficiency node (and optionally RViz and a bag player).

    ros2 launch recon_ros atlas.launch.py
    ros2 launch recon_ros atlas.launch.py image_topic:=/camera/image_rect \
        camera_info_topic:=/camera/camera_info
    ros2 launch recon_ros atlas.launch.py bag:=/path/to/bag use_sim_time:=true rviz:=true
    ros2 launch recon_ros atlas.launch.py depth_topic:=/camera/aligned_depth_to_color/image_raw \
        depth_camera_info_topic:=/camera/aligned_depth_to_color/camera_info   # an RGB-D camera

Parameters come from params_file (config/atlas.yaml by default); the weights, device and
world_frame arguments override it only when given. Works with ROS 2 Humble, Jazzy and Kilted.
"""

from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription

# launch argument -> node parameter, applied only when the argument is not empty
OVERRIDES = {
    "weights": "weights_path",
    "depth_weights": "depth_weights_path",
    "refine_weights": "refine_weights_path",
    "device": "device",
    "world_frame": "world_frame",
}


def _is_true(value: str) -> bool:
    return value.strip().lower() in ("true", "1", "yes", "on")


def _nodes(context):
    arg = {name: LaunchConfiguration(name).perform(context) for name in ARGUMENTS}
    use_sim_time = _is_true(arg["use_sim_time"])
    overrides = {param: arg[name] for name, param in OVERRIDES.items() if arg[name]}
    overrides["use_sim_time"] = use_sim_time
    remappings = [
        ("image", arg["image_topic"]),
        ("image/compressed", f"{arg['image_topic']}/compressed"),  # image_transport "compressed"
        ("camera_info", arg["camera_info_topic"]),
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
    nodes = [
        Node(
            package="recon_ros",
            executable="atlas_node",
            name="atlas_node",
            parameters=[arg["params_file"], atlas_overrides],
            remappings=atlas_remappings,
            output="screen",
            emulate_tty=True,
        )
    ]
    if _is_true(arg["sufficiency"]):
        sufficiency_overrides = {
            k: v
            for k, v in overrides.items()
            if k not in ("weights_path", "depth_weights_path", "refine_weights_path")
        }
        nodes.append(
            Node(
                package="recon_ros",
                executable="sufficiency_node",
                name="sufficiency_node",
                parameters=[arg["params_file"], sufficiency_overrides],
                remappings=remappings,
                output="screen",
                emulate_tty=True,
            )
        )
    if _is_true(arg["rviz"]):
        nodes.append(
            Node(
                package="rviz2",
                executable="rviz2",
                name="rviz2",
                arguments=["-d", f"{share}/config/atlas.rviz"],
                parameters=[{"use_sim_time": use_sim_time}],
            )
        )
    if arg["bag"]:
        nodes.append(
            Node(
                package="recon_ros",
                executable="bag_player",
                name="bag_player",
                parameters=[
                    {
                        "bag": arg["bag"],
                        "rate": float(arg["rate"]),
                        "clock": use_sim_time,
                        "wait_for_subscribers": [arg["image_topic"]],
                    }
                ],
                output="screen",
            )
        )
    return nodes


ARGUMENTS = {
    "params_file": (
        "",
        "Parameter file of atlas_node and sufficiency_node (default: config/atlas.yaml)",
    ),
    "image_topic": ("/camera/color/image_raw", "Rectified colour image (rgb8, bgr8, mono8, ...)"),
    "camera_info_topic": ("/camera/color/camera_info", "CameraInfo of that image"),
    "weights": ("", "Atlas checkpoint (pipeline atlas); empty: the params file's, else shipped"),
    "depth_weights": (
        "",
        "Depth network checkpoint (pipeline fusion); empty: the params file's, else shipped",
    ),
    "refinement": (
        "",
        "true/false: mesh through the 3D refinement network (pipeline fusion); empty: the "
        "params file's",
    ),
    "refine_weights": (
        "",
        "3D refinement network checkpoint; empty: the params file's, else shipped",
    ),
    "depth_topic": (
        "",
        "An RGB-D camera's depth image (16UC1 mm or 32FC1 m); empty: colour only (stereo depth)",
    ),
    "depth_camera_info_topic": (
        "",
        "CameraInfo of the depth image; empty: camera_info beside depth_topic",
    ),
    "device": ("", "auto, cpu, cuda or cuda:N; empty: the params file's"),
    "world_frame": ("", "Fixed frame of poses and outputs; empty: the params file's"),
    "use_sim_time": ("false", "Follow /clock (bag replay with clock)"),
    "sufficiency": ("true", "Run the frame-sufficiency node"),
    "rviz": ("false", "Start RViz with config/atlas.rviz"),
    "bag": ("", "Play this rosbag2 folder (sqlite3 or mcap) with recon_ros's bag_player"),
    "rate": ("1.0", "Bag playback speed"),
}


def generate_launch_description():
    declared = []
    config = PathJoinSubstitution([FindPackageShare("recon_ros"), "config", "atlas.yaml"])
    for name, (default, description) in ARGUMENTS.items():
        value = config if name == "params_file" else default
        declared.append(DeclareLaunchArgument(name, default_value=value, description=description))
    return LaunchDescription([*declared, OpaqueFunction(function=_nodes)])
