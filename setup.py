"""ament_python / pip packaging for vila_nav.

`colcon build` installs the Python package, the console scripts into lib/vila_nav (see setup.cfg,
that is where `ros2 run` and launch_ros look), and package.xml, launch/, config/ and sim/ into
share/vila_nav. `pip install -e .[ros,sim,train,quant,dev]` gives the same tools on a dev machine.
rclpy is never a hard requirement: robots get it from the system ROS; the `ros` extra pulls the
ROS 2 wheels from PyPI for development and CI machines.
"""
import os
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "vila_nav"


def package_files(folder):
    """package_data entries (relative to the package) for every file below vila_nav/<folder>.

    Listed file by file: setuptools < 62.3 (Ubuntu 22.04, ROS 2 Humble) does not expand `**`.
    """
    base = os.path.join(PACKAGE, folder)
    return [os.path.relpath(os.path.join(d, f), PACKAGE) for d, _dirs, files in os.walk(base) for f in files]


def tree(root):
    """data_files entries that mirror `root` under share/vila_nav/."""
    entries = []
    for folder, _dirs, files in os.walk(root):
        if files:
            entries.append((os.path.join("share", PACKAGE, folder), [os.path.join(folder, f) for f in files]))
    return entries


setup(
    name=PACKAGE,
    version="0.1.0",
    description="Natural-language navigation for ROS 2 robots with an on-robot VILA model",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(exclude=["tests", "tests.*"]),
    include_package_data=True,
    package_data={PACKAGE: package_files("assets")},
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + PACKAGE]),
        ("share/" + PACKAGE, ["package.xml"]),
        ("share/" + PACKAGE + "/launch", glob("launch/*.launch.py")),
    ]
    + tree("config")
    + tree("sim"),
    install_requires=[
        "numpy>=1.21",
        "opencv-python-headless>=4.5",
        "pyyaml",
        "pillow",  # bicubic resize identical to the SigLIP processor
        "hydra-core>=1.3",
        # torch is installed first by scripts/bootstrap.sh (pinned there); on a Jetson it is
        # NVIDIA's wheel. Any torch >= 2.1 satisfies this, so nothing is re-downloaded.
        "torch>=2.1",
        "transformers>=4.45",
        "tokenizers>=0.19",
        "safetensors>=0.4",
        "tqdm",
    ],
    extras_require={
        # ROS 2 (Kilted) wheels from PyPI for dev/CI machines; robots use the system ROS instead.
        "ros": [
            "ros-rclpy",
            "ros-std-msgs",
            "ros-geometry-msgs",
            "ros-sensor-msgs",
            "ros-nav-msgs",
            "ros-rmw-fastrtps-cpp",
        ],
        "sim": ["miniworld==2.1.0", "scipy>=1.9", "scikit-fmm", "networkx", "matplotlib"],
        "train": ["accelerate>=0.30", "matplotlib"],
        "quant": ["torchao>=0.10", "bitsandbytes>=0.45"],
        "dev": ["pytest>=7", "pytest-timeout", "hypothesis>=6", "psutil", "colcon-core", "colcon-ros", "catkin_pkg"],
    },
    zip_safe=False,
    entry_points={
        "console_scripts": [
            "vila-nav = vila_nav.cli:main",
            "vila_nav_node = vila_nav.ros.node:main",
            "vila_nav_sim_bridge = vila_nav.ros.sim_bridge:main",
        ],
    },
)
