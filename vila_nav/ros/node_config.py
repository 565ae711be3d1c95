"""The vila_nav_node's settings: one dataclass, declared as ROS parameters (see params.py).

The nested sections `frames`, `limits` and `parser` are the library's own configs
(FrameHistoryConfig, VelocityLimits, ParserConfig); the rest is what only the node needs. Every
leaf is a ROS parameter with the dotted name shown in config/robot.yaml. Times are seconds
(steady clock), speeds m/s and deg/s.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import ClassVar

from vila_nav.actions import ParserConfig
from vila_nav.controller import VelocityLimits
from vila_nav.frames import FrameHistoryConfig

CAMERA_TYPES = ("raw", "compressed")
DEVICES_HELP = "auto (cuda when available, else cpu), cpu, cuda, cuda:N"


def _positive(name: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")


@dataclass
class ModelSection:
    """Which model, where it runs, and how long an answer may take."""

    path: str = field(default="", metadata={"doc": "model directory (NaVILA layout); '' = the shipped model"})
    quantization: str = field(default="none", metadata={"doc": "none | int8 | int4 | nf4 (int4 needs CUDA)"})
    device: str = field(default="auto", metadata={"doc": DEVICES_HELP})
    dtype: str = field(default="auto", metadata={"doc": "auto | float32 | bfloat16 | float16"})
    timeout_s: float = field(default=10.0, metadata={"doc": "s an answer may take before the instruction stops ('model timeout')"})
    cpu_threads: int = field(default=0, metadata={"doc": "torch CPU threads for inference (0 = torch default)"})
    cache_size: int = field(default=64, metadata={"doc": "frames whose visual tokens are cached per instruction (0 = off)"})

    def __post_init__(self) -> None:
        _positive("model.timeout_s", self.timeout_s)
        if self.cpu_threads < 0:
            raise ValueError(f"model.cpu_threads must be >= 0, got {self.cpu_threads}")
        if self.cache_size < 0:
            raise ValueError(f"model.cache_size must be >= 0, got {self.cache_size}")


@dataclass
class CameraSection:
    """Camera input: topics, message type, which one the model sees, and the silence watchdog."""

    topics: list[str] = field(default_factory=lambda: ["camera/image_raw"],
                              metadata={"doc": "camera topics; all feed the watchdog"})
    type: str = field(default="raw", metadata={"doc": "raw (sensor_msgs/Image) | compressed (sensor_msgs/CompressedImage)"})
    model_topic: str = field(default="", metadata={"doc": "topic whose frames the model sees ('' = the first of topics)"})
    timeout_s: float = field(default=1.0, metadata={"doc": "s without a frame on any camera before zero velocity"})
    width: int = field(default=384, metadata={"doc": "frames are resized to width x height px before storing (0 = keep)"})
    height: int = field(default=384, metadata={"doc": "see width (384 = the model's input: no second resize)"})

    def __post_init__(self) -> None:
        self.topics = [str(t) for t in self.topics if str(t).strip()]
        if not self.topics:
            raise ValueError("camera.topics must name at least one topic")
        if len(set(self.topics)) != len(self.topics):
            raise ValueError(f"camera.topics has duplicates: {self.topics}")
        if self.type not in CAMERA_TYPES:
            raise ValueError(f"camera.type must be one of {CAMERA_TYPES}, got {self.type!r}")
        if self.model_topic and self.model_topic not in self.topics:
            raise ValueError(f"camera.model_topic '{self.model_topic}' is not one of camera.topics {self.topics}")
        _positive("camera.timeout_s", self.timeout_s)
        if (self.width == 0) != (self.height == 0) or self.width < 0 or self.height < 0:
            raise ValueError(f"camera.width/height must both be > 0 or both 0, got {self.width}x{self.height}")

    @property
    def model_camera(self) -> str:
        """The topic whose frames feed the model."""
        return self.model_topic or self.topics[0]


@dataclass
class CmdVelSection:
    """Velocity output: topic, message type and the fixed publishing rate."""

    topic: str = field(default="cmd_vel", metadata={"doc": "velocity command topic"})
    stamped: bool = field(default=False, metadata={"doc": "publish geometry_msgs/TwistStamped instead of Twist"})
    frame_id: str = field(default="base_link", metadata={"doc": "header.frame_id of TwistStamped"})
    rate_hz: float = field(default=20.0, metadata={"doc": "Hz: cmd_vel is published at this rate, always"})
    stall_periods: float = field(default=2.0, metadata={"doc": "periods without a timer tick before the wall-clock backup publishes zero"})

    def __post_init__(self) -> None:
        _positive("cmd_vel.rate_hz", self.rate_hz)
        if not (math.isfinite(self.stall_periods) and self.stall_periods >= 1.0):
            raise ValueError(f"cmd_vel.stall_periods must be >= 1, got {self.stall_periods}")


@dataclass
class TopicsSection:
    """The node's own interface topics (relative names follow the node's namespace)."""

    instruction: str = field(default="vila_nav/instruction", metadata={"doc": "std_msgs/String in (reliable, transient local); '' cancels"})
    estop: str = field(default="vila_nav/estop", metadata={"doc": "std_msgs/Bool in: true latches zero velocity until false"})
    status: str = field(default="vila_nav/status", metadata={"doc": "std_msgs/String out: JSON status (transient local)"})
    action: str = field(default="vila_nav/action", metadata={"doc": "std_msgs/String out: the model's raw answer text"})
    status_rate_hz: float = field(default=2.0, metadata={"doc": "Hz: periodic status (plus one on every change)"})

    def __post_init__(self) -> None:
        for name in ("instruction", "estop", "status", "action"):
            if not getattr(self, name):
                raise ValueError(f"topics.{name} must not be empty")
        _positive("topics.status_rate_hz", self.status_rate_hz)


@dataclass
class RunSection:
    """Per-instruction budgets."""

    max_queries: int = field(default=200, metadata={"doc": "model queries per instruction before it stops"})
    max_run_time_s: float = field(default=600.0, metadata={"doc": "s per instruction before it stops"})

    def __post_init__(self) -> None:
        if self.max_queries < 1:
            raise ValueError(f"run.max_queries must be >= 1, got {self.max_queries}")
        _positive("run.max_run_time_s", self.max_run_time_s)


def _robot_frames() -> FrameHistoryConfig:
    # NaVILA's robot: one frame per 0.5 s of motion; 128 stored 384x384 frames = 57 MB. num_frames 0:
    # as many frames per query as the loaded model takes (its config.json num_video_frames).
    return FrameHistoryConfig(num_frames=0, policy="per_interval", interval_s=0.5, max_frames=128,
                              blank_shape=(384, 384, 3))


@dataclass
class NodeConfig:
    """Everything vila_nav_node reads from its ROS parameters."""

    # Derived from camera.width/height, not a parameter of its own.
    ros_exclude: ClassVar[tuple[str, ...]] = ("frames.blank_shape",)

    model: ModelSection = field(default_factory=ModelSection)
    camera: CameraSection = field(default_factory=CameraSection)
    cmd_vel: CmdVelSection = field(default_factory=CmdVelSection)
    topics: TopicsSection = field(default_factory=TopicsSection)
    run: RunSection = field(default_factory=RunSection)
    frames: FrameHistoryConfig = field(default_factory=_robot_frames)
    limits: VelocityLimits = field(default_factory=VelocityLimits)
    parser: ParserConfig = field(default_factory=ParserConfig)

    def __post_init__(self) -> None:
        if self.frames.policy == "per_primitive":
            raise ValueError(
                "frames.policy 'per_primitive' is for the discrete simulator (no primitives on a robot); "
                "use per_interval (NaVILA's robot: a frame per interval_s of motion) or per_action"
            )
        if self.camera.width and tuple(self.frames.blank_shape) != (self.camera.height, self.camera.width, 3):
            # black padding frames must match the stored frames' size
            self.frames = dataclasses.replace(self.frames, blank_shape=(self.camera.height, self.camera.width, 3))
