"""Launch ifnet_node: the scene in front of the camera from each image alone (single-view depth
U-Net + IF-Net), its predicted depth and completed mesh.

    ros2 launch recon_ros ifnet.launch.py weights:=/path/ifnet.pt
    ros2 launch recon_ros ifnet.launch.py image_topic:=/camera/image_rect \
        camera_info_topic:=/camera/camera_info device:=cpu

Rate and threshold come from params_file (config/atlas.yaml by default, section
``/**/ifnet_node``); ``weights`` and ``device`` override it only when given. Uses no launch API
newer than ROS 2 Humble.
"""

from recon_ros.ros.launch_helpers import single_node_launch_description


def generate_launch_description():
    return single_node_launch_description(
        "ifnet_node",
        "single-view IF-Net checkpoint (.pt)",
        {
            "image": ("/camera/color/image_raw", "colour images"),
            "camera_info": ("/camera/color/camera_info", "their CameraInfo"),
        },
    )
