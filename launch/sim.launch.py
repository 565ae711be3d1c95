"""The robot loop without a robot: the embedded-simulator bridge + vila_nav_node.

    ros2 launch vila_nav sim.launch.py episode_id:=4 auto_instruct:=true
    vila-nav instruct "walk past the sofa and stop at the door" --follow   # or your own words

vila_nav_sim_bridge runs a VLN-CE episode in the embedded MiniWorld simulator: cmd_vel in,
camera (sensor_msgs/Image rgb8) and odometry out, episode metrics on vila_nav/sim/episode_result
when the robot stops or time runs out. Both nodes read the same parameters file (sections
vila_nav_node and vila_nav_sim_bridge). Only the public launch / launch_ros API.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

PACKAGE = "vila_nav"


def text(value: str) -> ParameterValue:
    """A string parameter that stays a string (launch_ros would turn "4" into an integer)."""
    return ParameterValue(value, value_type=str)


def _nodes(context):
    """Bridge and node, with overrides only for the arguments that were given."""
    arg = lambda name: LaunchConfiguration(name).perform(context).strip()  # noqa: E731
    sim_time = arg("use_sim_time").lower() in ("true", "1", "yes")
    bridge = {"episode.auto_instruct": arg("auto_instruct").lower() in ("true", "1", "yes")}
    for name, key in (("dataset_path", "episode.dataset_path"), ("split", "episode.split"),
                      ("episode_id", "episode.episode_id")):
        if arg(name):
            bridge[key] = text(arg(name))
    node = {"use_sim_time": sim_time}
    if arg("model_path"):
        node["model.path"] = text(arg("model_path"))
    if arg("quantization"):
        node["model.quantization"] = text(arg("quantization"))
    params_file = arg("params_file")
    return [
        Node(package=PACKAGE, executable="vila_nav_sim_bridge", name="vila_nav_sim_bridge",
             output="screen", emulate_tty=True, parameters=[params_file, bridge]),
        Node(package=PACKAGE, executable="vila_nav_node", name="vila_nav_node",
             output="screen", emulate_tty=True, parameters=[params_file, node]),
    ]


def generate_launch_description():
    return LaunchDescription([
        DeclareLaunchArgument(
            "params_file",
            default_value=PathJoinSubstitution([FindPackageShare(PACKAGE), "config", "robot.yaml"]),
            description="ROS parameters file with vila_nav_node and vila_nav_sim_bridge sections",
        ),
        DeclareLaunchArgument("model_path", default_value="", description="model directory; empty: the params file's"),
        DeclareLaunchArgument("quantization", default_value="", description="none | int8 | int4 | nf4; empty: the params file's"),
        DeclareLaunchArgument("dataset_path", default_value="", description="VLN-CE R2R root; empty: the shipped episodes"),
        DeclareLaunchArgument("split", default_value="", description="split (empty: the params file's, val_unseen)"),
        DeclareLaunchArgument("episode_id", default_value="", description="episode id (empty: the first of the split)"),
        DeclareLaunchArgument("auto_instruct", default_value="true",
                              description="the bridge sends the episode's instruction to the node"),
        DeclareLaunchArgument("use_sim_time", default_value="false",
                              description="the node follows the bridge's /clock (it runs in real time, so wall "
                                          "time is equivalent and gives a steadier cmd_vel)"),
        OpaqueFunction(function=_nodes),
    ])
