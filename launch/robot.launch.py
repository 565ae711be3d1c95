"""Start vila_nav_node on a robot.

    ros2 launch vila_nav robot.launch.py model_path:=/models/navila-8b quantization:=int4 \
        camera_topic:=/camera/color/image_raw cmd_vel_topic:=/cmd_vel_vila

Every setting lives in the parameters file (default: share/vila_nav/config/robot.yaml); the
launch arguments override a few of them when given. An empty argument (the default) keeps the
file's value. camera_topic / cmd_vel_topic remap the node's default topics `camera/image_raw`
and `cmd_vel`. Only the public launch / launch_ros API (Humble, Jazzy, Kilted).
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

PACKAGE = "vila_nav"


def text(value: str) -> ParameterValue:
    """A string parameter that stays a string (launch_ros would turn a numeric path into a number)."""
    return ParameterValue(value, value_type=str)


def _node(context):
    """The node, with overrides only for the arguments that were given."""
    arg = lambda name: LaunchConfiguration(name).perform(context).strip()  # noqa: E731
    overrides = {"use_sim_time": arg("use_sim_time").lower() in ("true", "1", "yes")}
    if arg("model_path"):
        overrides["model.path"] = text(arg("model_path"))
    if arg("quantization"):
        overrides["model.quantization"] = text(arg("quantization"))
    if arg("camera_type"):
        overrides["camera.type"] = text(arg("camera_type"))
    remappings = []
    if arg("camera_topic"):
        remappings.append(("camera/image_raw", arg("camera_topic")))
    if arg("cmd_vel_topic"):
        remappings.append(("cmd_vel", arg("cmd_vel_topic")))
    return [
        Node(
            package=PACKAGE,
            executable="vila_nav_node",
            name="vila_nav_node",
            namespace=arg("namespace"),
            output="screen",
            emulate_tty=True,
            parameters=[arg("params_file"), overrides],
            remappings=remappings,
        )
    ]


def generate_launch_description():
    return LaunchDescription([
        DeclareLaunchArgument(
            "params_file",
            default_value=PathJoinSubstitution([FindPackageShare(PACKAGE), "config", "robot.yaml"]),
            description="ROS parameters file with a vila_nav_node section",
        ),
        DeclareLaunchArgument("model_path", default_value="",
                              description="model directory (NaVILA layout); empty: the params file's model.path"),
        DeclareLaunchArgument("quantization", default_value="",
                              description="none | int8 | int4 | nf4; empty: the params file's model.quantization"),
        DeclareLaunchArgument("camera_topic", default_value="",
                              description="camera topic to remap camera/image_raw to; empty: no remap"),
        DeclareLaunchArgument("camera_type", default_value="",
                              description="raw | compressed; empty: the params file's camera.type"),
        DeclareLaunchArgument("cmd_vel_topic", default_value="",
                              description="topic to remap cmd_vel to (e.g. Nav2's cmd_vel_nav or a twist_mux input)"),
        DeclareLaunchArgument("use_sim_time", default_value="false", description="use /clock"),
        DeclareLaunchArgument("namespace", default_value="", description="node namespace"),
        OpaqueFunction(function=_node),
    ])
