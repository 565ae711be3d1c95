"""vila_nav: natural-language navigation for ROS 2 robots with an on-robot VILA model.

The pure core (frames, actions, controller, metrics) imports neither torch nor rclpy; the model
(vila_nav.model), simulators (vila_nav.envs), evaluator (vila_nav.evaluation) and ROS nodes
(vila_nav.ros) import their heavy dependencies themselves.
"""

__version__ = "0.1.0"
