# Environment shared by scripts/demo and scripts/test (sourced, not executed).
# Never touch a model or dataset hub: everything loads from local paths.
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
# MiniWorld/pyglet render off-screen through EGL.
export PYGLET_HEADLESS=1
# ROS 2 traffic stays on this machine (Humble reads the first variable, Jazzy+ the second).
export ROS_LOCALHOST_ONLY=1 ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
export RMW_IMPLEMENTATION="${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}"
