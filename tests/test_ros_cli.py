"""`vila-nav instruct` / `vila-nav status`: usable without ROS code, clear errors without a node
or without ROS. (With a node they are exercised end to end in test_ros_e2e.py.)"""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from vila_nav.ros.runtime import ROS_MISSING

pytestmark = pytest.mark.ros

# Run the CLI in a Python where `import rclpy` fails, as on a machine without a sourced ROS.
NO_ROS = "import sys; sys.modules['rclpy'] = None; from vila_nav.cli import main; sys.exit(main(sys.argv[1:]))"


@pytest.mark.parametrize("argv", [["instruct", "go to the kitchen"], ["status"]])
def test_without_ros_the_error_says_what_to_do(argv):
    r = subprocess.run([sys.executable, "-c", NO_ROS, *argv], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert ROS_MISSING in r.stderr and "source /opt/ros/<distro>/setup.bash or pip install vila_nav[ros]" in r.stderr


@pytest.fixture
def lonely_domain(monkeypatch):
    """A ROS domain where nothing runs."""
    pytest.importorskip("rclpy")
    monkeypatch.setenv("ROS_DOMAIN_ID", str((os.getpid() + 97) % 200 + 20))


def test_instruct_without_a_node_fails_clearly(lonely_domain, capsys):
    from vila_nav.cli import main

    assert main(["instruct", "go to the kitchen", "--wait", "0.5"]) == 2
    err = capsys.readouterr().err
    assert "no node subscribes to /vila_nav/instruction after 0.5 s" in err


def test_status_without_a_node_fails_clearly(lonely_domain, capsys):
    from vila_nav.cli import main

    assert main(["status", "--wait", "0.5", "--namespace", "/robot1"]) == 2
    assert "no status on /robot1/vila_nav/status within 0.5 s" in capsys.readouterr().err


def test_instruct_needs_an_instruction_or_cancel(capsys):
    from vila_nav.cli import main

    assert main(["instruct"]) == 2
    assert main(["instruct", "go", "--cancel"]) == 2
    assert "give an instruction or --cancel" in capsys.readouterr().err


def test_commands_are_registered():
    from vila_nav.cli import COMMANDS

    assert COMMANDS["instruct"][0] == "vila_nav.ros.instruct:main"
    assert COMMANDS["status"][0] == "vila_nav.ros.status_cli:main"
    assert COMMANDS["bench-ros"][0] == "vila_nav.ros.bench:main"
