"""vila_nav.ros: the ROS 2 layer (rclpy is imported only by the modules that need it).

Pure (no rclpy, no torch): node_config / bridge_config (typed settings), params (dataclass <->
ROS parameters), session (the instruction state machine), worker (the inference thread),
status (the JSON status), episode_monitor (when a simulated episode ends), image (Image /
CompressedImage <-> RGB arrays). ROS: node (vila_nav_node), sim_bridge (vila_nav_sim_bridge),
instruct / status_cli / client (the `vila-nav instruct` and `vila-nav status` commands), runtime
(init, shutdown, spinning), probe and bench (`vila-nav bench-ros`), testing (known inputs).
"""
