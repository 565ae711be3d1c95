"""The vila_nav_sim_bridge's settings: one dataclass, declared as ROS parameters (see params.py).

`sim` is the simulator's own SimConfig (backend, image size, field of view, agent size ...);
the rest says which VLN-CE episode to run, the topics, the rates and when an episode ends.
Times are seconds, rates Hz.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from vila_nav.envs.config import SimConfig


def _positive(name: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")


@dataclass
class EpisodeSection:
    """Which episode runs, and when it ends."""

    dataset_path: str = field(default="", metadata={"doc": "VLN-CE R2R root or split file ('' = the shipped episodes)"})
    split: str = field(default="val_unseen", metadata={"doc": "split name under dataset_path"})
    episode_id: str = field(default="", metadata={"doc": "episode to load ('' = the first of the split)"})
    max_time_s: float = field(default=300.0, metadata={"doc": "s of simulated time before the episode ends (no stop)"})
    idle_stop_s: float = field(default=3.0, metadata={"doc": "s at zero velocity after moving that count as the agent's stop when no node status is heard"})
    auto_instruct: bool = field(default=False, metadata={"doc": "publish the episode's instruction to the node at start"})

    def __post_init__(self) -> None:
        if not self.split:
            raise ValueError("episode.split must not be empty")
        _positive("episode.max_time_s", self.max_time_s)
        _positive("episode.idle_stop_s", self.idle_stop_s)


@dataclass
class BridgeTopics:
    """Topics (relative names follow the bridge's namespace; defaults match vila_nav_node's)."""

    cmd_vel: str = field(default="cmd_vel", metadata={"doc": "velocity command in"})
    cmd_vel_stamped: bool = field(default=False, metadata={"doc": "cmd_vel is geometry_msgs/TwistStamped (else Twist)"})
    camera: str = field(default="camera/image_raw", metadata={"doc": "sensor_msgs/Image rgb8 out"})
    odom: str = field(default="odom", metadata={"doc": "nav_msgs/Odometry out"})
    status: str = field(default="vila_nav/status", metadata={"doc": "the node's JSON status in (episode end on done/stopped)"})
    instruction: str = field(default="vila_nav/instruction", metadata={"doc": "where auto_instruct publishes"})
    episode: str = field(default="vila_nav/sim/episode", metadata={"doc": "JSON of the running episode out (transient local)"})
    result: str = field(default="vila_nav/sim/episode_result", metadata={"doc": "JSON episode metrics out (transient local)"})
    reset: str = field(default="vila_nav/sim/reset", metadata={"doc": "std_msgs/String in: episode id to (re)load ('' = same)"})
    odom_frame: str = field(default="odom", metadata={"doc": "header.frame_id of odometry"})
    base_frame: str = field(default="base_link", metadata={"doc": "child_frame_id of odometry"})
    camera_frame: str = field(default="camera_link", metadata={"doc": "header.frame_id of images"})


@dataclass
class BridgeRates:
    """Simulation and publishing rates."""

    physics_hz: float = field(default=30.0, metadata={"doc": "Hz of the continuous motion integration"})
    camera_hz: float = field(default=10.0, metadata={"doc": "Hz of camera images"})
    cmd_timeout_s: float = field(default=0.5, metadata={"doc": "s without cmd_vel before the robot brakes to zero"})
    publish_clock: bool = field(default=True, metadata={"doc": "publish /clock (simulated time = wall time since start)"})

    def __post_init__(self) -> None:
        _positive("rates.physics_hz", self.physics_hz)
        _positive("rates.camera_hz", self.camera_hz)
        _positive("rates.cmd_timeout_s", self.cmd_timeout_s)


@dataclass
class BridgeConfig:
    """Everything vila_nav_sim_bridge reads from its ROS parameters."""

    sim: SimConfig = field(default_factory=SimConfig)
    episode: EpisodeSection = field(default_factory=EpisodeSection)
    topics: BridgeTopics = field(default_factory=BridgeTopics)
    rates: BridgeRates = field(default_factory=BridgeRates)
