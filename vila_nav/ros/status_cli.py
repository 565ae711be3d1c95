"""`vila-nav status [--watch] [--json]`: print what vila_nav_node is doing.

Reads the node's latched status topic (`vila_nav/status` in --namespace; remap after --ros-args)
and prints one line: state, instruction, last action, decision latency, velocity, and the reason
for any stop. --watch prints every change until Ctrl-C; --json prints the raw JSON instead.
Exit 0 when a status arrived, 2 when none did within --wait seconds (or ROS is missing).
"""
from __future__ import annotations

import argparse
import os
import sys

from vila_nav.ros.node_config import TopicsSection
from vila_nav.ros.runtime import ROS_MISSING, split_ros_args


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="vila-nav status", description=__doc__.split("\n\n")[0])
    ap.add_argument("--watch", action="store_true", help="keep printing status changes until Ctrl-C")
    ap.add_argument("--json", action="store_true", help="print the status JSON as published")
    ap.add_argument("--wait", type=float, default=5.0, help="s to wait for the node's status (default 5)")
    ap.add_argument("--namespace", default="", help="the node's namespace, e.g. /robot1")
    return ap


def _show(st, as_json: bool) -> None:
    if as_json:
        print(st.to_json(), flush=True)
        return
    print(st.summary(), flush=True)
    if st.cameras:
        ages = ", ".join(f"{t}: {'never' if a is None else f'{a:.2f} s'}" for t, a in st.cameras.items())
        print(f"  cameras (age of newest frame): {ages}; model: {st.model}", flush=True)


def _key(st) -> tuple:
    return (st.state, st.reason, st.instruction, st.generation, st.queries, st.raw_text, st.linear, st.angular)


def main(argv: list[str]) -> int:
    own, ros_args = split_ros_args(argv)
    args = _parser().parse_args(own)
    try:
        from vila_nav.ros import client
    except (RuntimeError, ImportError) as exc:
        msg = str(exc) if isinstance(exc, RuntimeError) else f"{ROS_MISSING} ({exc})"
        print(f"vila-nav status: {msg}", file=sys.stderr)
        return 2
    with client.Client(f"vila_nav_status_{os.getpid()}", ros_args, args.namespace) as cli:
        follower = cli.follow_status(TopicsSection().status)
        if not cli.wait_for(lambda: follower.latest is not None, args.wait):
            topic = f"{args.namespace.rstrip('/')}/{TopicsSection().status}"
            print(f"vila-nav status: no status on {topic} within {args.wait:g} s "
                  "(is vila_nav_node running, with the same ROS_DOMAIN_ID?)", file=sys.stderr)
            return 2
        _show(follower.latest, args.json)
        if not args.watch:
            return 0
        seen = _key(follower.latest)
        try:
            while True:
                cli.spin_once(0.2)
                if _key(follower.latest) != seen:  # a change, not the periodic repeat
                    seen = _key(follower.latest)
                    _show(follower.latest, args.json)
        except KeyboardInterrupt:
            return 0
