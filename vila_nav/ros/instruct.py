"""`vila-nav instruct "walk to the kitchen and stop by the table" [--follow]`: talk to the node.

Publishes the instruction on the node's instruction topic (reliable, transient local: it waits
until the node is subscribed and has acknowledged it) and, with --follow, prints the node's
status for this instruction until it ends. Exit codes: 0 sent (or, with --follow, done: the model
said stop), 1 the instruction stopped for another reason or errored, 2 no node / no ROS,
3 --timeout reached. `--cancel` sends the empty instruction (the robot stops).

Topics are the node's defaults (`vila_nav/instruction`, `vila_nav/status`), resolved in
--namespace; other names via ROS remapping after --ros-args, e.g.
`vila-nav instruct "..." --ros-args -r vila_nav/instruction:=/robot/instruction`.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

from vila_nav.ros.node_config import TopicsSection
from vila_nav.ros.runtime import ROS_MISSING, split_ros_args

EXIT_DONE, EXIT_STOPPED, EXIT_NO_NODE, EXIT_TIMEOUT = 0, 1, 2, 3


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="vila-nav instruct", description=__doc__.split("\n\n")[0])
    ap.add_argument("instruction", nargs="?", default=None, help="what the robot should do (quoted)")
    ap.add_argument("--follow", action="store_true", help="print the node's status until the instruction ends")
    ap.add_argument("--cancel", action="store_true", help="send the empty instruction: stop what the robot is doing")
    ap.add_argument("--timeout", type=float, default=None, help="s to follow before giving up (default: no limit)")
    ap.add_argument("--wait", type=float, default=10.0, help="s to wait for a node to listen (default 10)")
    ap.add_argument("--namespace", default="", help="the node's namespace, e.g. /robot1")
    return ap


def main(argv: list[str]) -> int:
    own, ros_args = split_ros_args(argv)
    args = _parser().parse_args(own)
    if args.cancel == (args.instruction is not None):
        print("vila-nav instruct: give an instruction or --cancel (not both)", file=sys.stderr)
        return EXIT_NO_NODE
    text = "" if args.cancel else args.instruction
    try:
        from vila_nav.ros import client
    except RuntimeError as exc:
        print(f"vila-nav instruct: {exc}", file=sys.stderr)
        return EXIT_NO_NODE
    except ImportError as exc:
        print(f"vila-nav instruct: {ROS_MISSING} ({exc})", file=sys.stderr)
        return EXIT_NO_NODE

    topics = TopicsSection()
    with client.Client(f"vila_nav_instruct_{os.getpid()}", ros_args, args.namespace) as cli:
        status_sub = cli.follow_status(topics.status)
        pub = cli.latched_publisher(topics.instruction)
        if not cli.wait_for(lambda: pub.get_subscription_count() > 0, args.wait):
            print(f"vila-nav instruct: no node subscribes to {pub.topic_name} after {args.wait:g} s "
                  "(is vila_nav_node running, with the same ROS_DOMAIN_ID?)", file=sys.stderr)
            return EXIT_NO_NODE
        cli.wait_for(lambda: status_sub.latest is not None, 1.0)  # the node's latched status
        before = status_sub.latest.generation if status_sub.latest is not None else 0
        if not cli.publish_string(pub, text, timeout_s=5.0):
            print(f"vila-nav instruct: the node did not acknowledge the instruction on {pub.topic_name}", file=sys.stderr)
            return EXIT_NO_NODE
        print(f"sent to {pub.topic_name}: {text!r}" if text else f"sent cancel to {pub.topic_name}", flush=True)
        if not args.follow:
            return EXIT_DONE
        return _follow(cli, status_sub, text, before, args.timeout)


def _follow(cli, status_sub, text: str, before: int, timeout: float | None) -> int:
    """Print status changes of our instruction until it finishes; return the exit code."""
    deadline = None if timeout is None else time.monotonic() + timeout
    last_key = None
    while deadline is None or time.monotonic() < deadline:
        cli.spin_once(0.1)
        st = status_sub.latest
        if st is None or st.generation <= before or st.instruction != text.strip():
            continue
        key = (st.state, st.reason, st.action, st.raw_text, st.queries)
        if key != last_key:  # one line per change, not per periodic report
            print(st.summary(), flush=True)
            last_key = key
        if st.finished:
            return EXIT_DONE if st.state == "done" else EXIT_STOPPED
    print(f"vila-nav instruct: still running after {timeout:g} s (the robot keeps going; "
          "`vila-nav instruct --cancel` stops it)", file=sys.stderr)
    return EXIT_TIMEOUT
