"""ROS loop benchmark: `python benchmarks/bench_ros.py [--model PATH]` (same as `vila-nav bench-ros`).

Prints cmd_vel rate and jitter while the model infers, instruction-to-first-motion latency,
decision latency in the loop, and the node's CPU and memory, as a markdown table.
"""
import sys

from vila_nav.ros.bench import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
