"""`recon-ros play BAG`: publish a rosbag2 into the ROS graph at its recorded rate (the
bag_player node; needs ROS 2)."""

from __future__ import annotations


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "play",
        help="publish a rosbag2 into the ROS graph at its recorded rate (like ros2 bag play)",
    )
    parser.add_argument("bag", help="rosbag2 folder (sqlite3 or mcap)")
    parser.add_argument("-r", "--rate", type=float, default=1.0, help="playback speed factor")
    parser.add_argument("--clock", action="store_true", help="publish /clock from the bag's time")
    parser.add_argument("--topics", nargs="+", default=[], help="topics to play (default: all)")
    parser.add_argument(
        "--wait-for-subscribers",
        nargs="+",
        default=[],
        metavar="TOPIC",
        help="start once these topics have a subscriber (at most --wait-timeout seconds)",
    )
    parser.add_argument("--wait-timeout", type=float, default=10.0)
    parser.set_defaults(func=run)


def ros_arguments(args) -> list[str]:
    """The bag_player parameters as ``--ros-args -p ...`` arguments."""
    ros_args = ["--ros-args", "-p", f"bag:={args.bag}", "-p", f"rate:={float(args.rate)}"]
    ros_args += ["-p", f"clock:={'true' if args.clock else 'false'}"]
    ros_args += ["-p", f"wait_timeout_s:={float(args.wait_timeout)}"]
    if args.topics:
        ros_args += ["-p", f"topics:=[{','.join(args.topics)}]"]
    if args.wait_for_subscribers:
        ros_args += ["-p", f"wait_for_subscribers:=[{','.join(args.wait_for_subscribers)}]"]
    return ros_args


def run(args) -> int:
    from recon_ros.ros.bag_player import main

    return main(["recon-ros-play", *ros_arguments(args)])
