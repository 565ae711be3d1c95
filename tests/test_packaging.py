"""A ROS user's view of the package: `colcon build` of vila_nav in a fresh workspace.

Real tools, no mocks: colcon-core + colcon-ros (which parses package.xml with catkin_pkg) build a
copy of this checkout in a temporary workspace (`src/vila_nav`), as `colcon build` does on a
robot, once as a plain install and once with `--symlink-install`. The tests then check what `ros2 run`, `ros2 launch`, ament_index_python and
`vila_nav.paths` rely on: the ament index marker, package.xml and the launch/config/sim trees under
share/vila_nav, the console scripts under lib/vila_nav, and the Python package importable from the
install after sourcing the workspace's setup script. A plain build takes about a second here.
"""
from __future__ import annotations

import ast
import configparser
import filecmp
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "vila_nav"
# What package.xml must declare for a robot's `rosdep install` (ROS packages and rosdep keys).
REQUIRED_EXEC_DEPENDS = {
    "rclpy",
    "std_msgs",
    "sensor_msgs",
    "geometry_msgs",
    "nav_msgs",
    "python3-numpy",
    "python3-opencv",
    "python3-pil",  # Pillow: NaVILA's bicubic resize (vila_nav.model.preprocess)
}
REQUIRED_SCRIPTS = {"vila-nav", "vila_nav_node", "vila_nav_sim_bridge"}
SCRIPT_DIR = "$base/lib/" + PACKAGE
# Data trees installed under share/vila_nav: (folder, glob) as setup.py's data_files declare them.
DATA_TREES = (("config", "*.yaml"), ("launch", "*.launch.py"), ("sim", "**/*"))
# colcon-ros installs the index marker and package.xml itself (with this warning) when setup.py
# forgets them; the layout checks must not pass thanks to that fallback.
COLCON_FALLBACK_WARNING = "doesn't explicitly install"
# Never copied into the workspace when git cannot list the checkout's files.
NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "runs", "build", "install", "log", "outputs", "__pycache__", "*.egg-info",
    ".pytest_cache", ".hypothesis", ".gl", ".whl",
)
TIMEOUT_S = 180

# Run inside the sourced workspace (cwd outside the checkout): prints what a user's Python sees.
PROBE = r"""
import importlib.metadata as md, json, os, sys
from ament_index_python.packages import get_package_prefix, get_package_share_directory
import vila_nav, vila_nav.actions, vila_nav.paths

out = {"vila_nav_file": vila_nav.__file__, "actions_file": vila_nav.actions.__file__,
       "version": vila_nav.__version__,
       "ament_share": get_package_share_directory("vila_nav"),
       "ament_prefix": get_package_prefix("vila_nav")}
dist = md.distribution("vila_nav")
out["dist_location"] = str(dist.locate_file(""))
out["dist_version"] = dist.version
scripts = {}
for ep in dist.entry_points:
    if ep.group != "console_scripts":
        continue
    try:
        obj = ep.load()
        scripts[ep.name] = {"value": ep.value, "callable": callable(obj),
                            "module_file": sys.modules[ep.module].__file__}
    except Exception as exc:  # reported, not raised: the test names the broken script
        scripts[ep.name] = {"value": ep.value, "error": f"{type(exc).__name__}: {exc}"}
out["scripts"] = scripts
try:
    out["share_dir"] = str(vila_nav.paths.share_dir())
except FileNotFoundError as exc:
    out["share_dir_error"] = str(exc)
print("PROBE " + json.dumps(out))
"""


# ---------------------------------------------------------------------------------------------
# Workspace helpers
# ---------------------------------------------------------------------------------------------


def _source_files(root: Path) -> list[str]:
    """Files a clone of `root` would hold plus new untracked, not ignored ones (git's view).

    Empty when git cannot list them (no git, not a checkout): the caller then copies a filtered walk.
    """
    if not (root / ".git").exists() or not shutil.which("git"):
        return []
    listed = subprocess.run(
        ["git", "-C", str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
    )
    if listed.returncode != 0:
        return []
    return sorted(p for p in listed.stdout.decode().split("\0") if p and (root / p).is_file())


def _copy_checkout(dest: Path) -> None:
    """Copy this checkout (sources and data, no venv/git/runs/build outputs) to `dest`."""
    files = _source_files(REPO)
    if not files:
        shutil.copytree(REPO, dest, ignore=NOT_SOURCE, symlinks=True)
        return
    for rel in files:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, target, follow_symlinks=False)


def _tree(root: Path) -> set[str]:
    """Relative paths of every file below `root`."""
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def _env(tmp: Path) -> dict[str, str]:
    """The caller's environment minus the data override (PYTHONPATH stays: a system ROS's rclpy
    lives there; setup.sh puts the install first and the probes check that its copy is used)."""
    env = {k: v for k, v in os.environ.items() if k != "VILA_NAV_SHARE"}
    env["COLCON_HOME"] = str(tmp / "colcon_home")  # no user defaults/mixins
    return env


def _run(cmd: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)


def _in_workspace(install: Path, argv: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run argv after `. install/setup.sh`, as a user's shell would."""
    script = '. "$0/setup.sh" && exec "$@"'
    return _run(["sh", "-c", script, str(install), *argv], cwd, env)


class Workspace:
    """A colcon workspace holding a copy of this checkout, built once."""

    def __init__(self, root: Path, symlink: bool) -> None:
        self.root = root
        self.src = root / "src" / PACKAGE
        self.install = root / "install"
        self.prefix = self.install / PACKAGE  # colcon's default isolated layout
        self.share = self.prefix / "share" / PACKAGE
        self.env = _env(root)
        _copy_checkout(self.src)
        before = _tree(self.src)
        # `python -m colcon`: setup.py runs with this interpreter (as in a venv on a robot)
        # (the workspace holds only vila_nav: no --packages-select, which needs colcon-package-selection)
        cmd = [sys.executable, "-m", "colcon", "--log-base", "log", "build", "--base-paths", "src",
               "--build-base", "build", "--install-base", "install", "--event-handlers", "console_direct+"]
        if symlink:
            cmd.append("--symlink-install")
        self.build = _run(cmd, root, self.env)
        self.output = self.build.stdout + self.build.stderr
        self.source_added = sorted(_tree(self.src) - before)
        self._probe: dict | None = None

    def scripts_dir(self) -> set[str]:
        """Names in lib/vila_nav (where `ros2 run` and launch_ros look for executables)."""
        lib = self.prefix / "lib" / PACKAGE
        return {p.name for p in lib.iterdir()} if lib.is_dir() else set()

    def site_packages(self) -> Path:
        found = sorted(self.prefix.glob("lib/python3*/*-packages"))
        assert len(found) == 1, f"expected one Python install dir under {self.prefix}/lib, found {found}"
        return found[0]

    def probe(self) -> dict:
        if self._probe is None:
            outside = self.root / "elsewhere"  # not the checkout: '' on sys.path must not find vila_nav
            outside.mkdir(exist_ok=True)
            res = _in_workspace(self.install, [sys.executable, "-c", PROBE], outside, self.env)
            lines = [ln for ln in res.stdout.splitlines() if ln.startswith("PROBE ")]
            assert res.returncode == 0 and lines, f"probe failed in the sourced workspace:\n{res.stdout}\n{res.stderr}"
            self._probe = json.loads(lines[-1][len("PROBE "):])
        return self._probe


def _build(tmp_path_factory, symlink: bool) -> Workspace:
    pytest.importorskip("colcon_core", reason="colcon-core is not installed (the dev extra installs it)")
    pytest.importorskip("colcon_ros", reason="colcon-ros is not installed (the dev extra installs it)")
    ws = Workspace(tmp_path_factory.mktemp("symlink_ws" if symlink else "ws"), symlink)
    assert ws.build.returncode == 0, f"colcon build failed:\n{ws.output[-6000:]}"
    return ws


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Workspace:
    return _build(tmp_path_factory, symlink=False)


@pytest.fixture(scope="module")
def symlink_ws(tmp_path_factory) -> Workspace:
    return _build(tmp_path_factory, symlink=True)


def _setup_py_version(ws: Workspace) -> str:
    """The version setup.py declared, from the metadata the build generated (PKG-INFO)."""
    infos = list(ws.site_packages().glob(f"{PACKAGE}-*.egg-info/PKG-INFO"))
    assert len(infos) == 1, f"expected one installed egg-info, found {infos}"
    match = re.search(r"^Version: (\S+)$", infos[0].read_text(), re.M)
    assert match, f"no Version in {infos[0]}"
    return match.group(1)


# ---------------------------------------------------------------------------------------------
# Plain install (what most users build)
# ---------------------------------------------------------------------------------------------


def test_colcon_builds_it_as_ament_python_without_fallbacks(ws):
    # colcon-ros identified package.xml's build type and ran its ament_python task
    logger = (ws.root / "log" / "latest_build" / "logger_all.log").read_text()
    assert "with build type 'ament_python'" in logger, logger[-3000:]
    assert "Finished <<< vila_nav" in ws.output
    # setup.py installs the index marker and package.xml itself (colcon-ros would otherwise add
    # them with a deprecation warning, hiding a broken data_files)
    assert COLCON_FALLBACK_WARNING not in ws.output, ws.output[-3000:]
    # the build writes nothing into the source space (read-only or shared checkouts stay clean)
    assert ws.source_added == [], f"colcon build wrote into src/vila_nav: {ws.source_added[:20]}"


def test_install_layout(ws):
    marker = ws.prefix / "share" / "ament_index" / "resource_index" / "packages" / PACKAGE
    assert marker.is_file(), "ament index marker missing: ros2 run/launch cannot find vila_nav"
    assert filecmp.cmp(ws.share / "package.xml", ws.src / "package.xml", shallow=False)
    # console scripts go to lib/vila_nav (where `ros2 run` and launch_ros look), not bin/
    lib = ws.prefix / "lib" / PACKAGE
    installed = ws.scripts_dir()
    assert REQUIRED_SCRIPTS <= installed, f"missing in {lib}: {sorted(REQUIRED_SCRIPTS - installed)}"
    for name in installed:
        assert os.access(lib / name, os.X_OK), f"{lib / name} is not executable"
    assert not (ws.prefix / "bin").exists(), f"scripts landed in bin/: {sorted(os.listdir(ws.prefix / 'bin'))}"
    # the pure package and its subpackages are installed as files (not an egg link)
    site = ws.site_packages()
    for rel in ("vila_nav/__init__.py", "vila_nav/actions.py", "vila_nav/paths.py", "vila_nav/ros/node.py"):
        assert (site / rel).is_file(), f"{rel} not installed in {site}"
    # the shipped model (the node's default) with every file of its NaVILA layout
    model = ws.src / "vila_nav" / "assets" / "navila-tiny"
    shipped = sorted(p.relative_to(model).as_posix() for p in model.rglob("*") if p.is_file())
    assert "llm/model.safetensors" in shipped and "vision_tower/model.safetensors" in shipped
    for rel in shipped:
        assert (site / "vila_nav" / "assets" / "navila-tiny" / rel).is_file(), f"shipped model file {rel} not installed"
    assert not list(site.glob("*.egg-link"))


@pytest.mark.parametrize("folder, pattern", DATA_TREES, ids=[f for f, _ in DATA_TREES])
def test_data_tree_mirrored_under_share(ws, folder, pattern):
    src_root, dst_root = ws.src / folder, ws.share / folder
    expected = {str(p.relative_to(src_root)) for p in src_root.glob(pattern) if p.is_file()}
    if folder == "config":
        assert expected, "config/ holds no *.yaml: nothing for hydra or the ROS parameter file"
    installed = _tree(dst_root) if dst_root.is_dir() else set()
    assert installed == expected, (
        f"share/vila_nav/{folder} differs from {folder}/: missing {sorted(expected - installed)[:10]}, "
        f"extra {sorted(installed - expected)[:10]}"
    )
    for rel in expected:
        assert filecmp.cmp(src_root / rel, dst_root / rel, shallow=False), f"{folder}/{rel} differs"


def test_python_package_and_data_resolve_from_the_install(ws):
    facts = ws.probe()
    site = ws.site_packages()
    # the installed copy is imported (not the developer's editable checkout)
    assert Path(facts["vila_nav_file"]).is_relative_to(site), facts["vila_nav_file"]
    assert Path(facts["actions_file"]).is_relative_to(site), facts["actions_file"]
    assert Path(facts["dist_location"]) == site
    # ament_index_python finds the package through AMENT_PREFIX_PATH set by setup.sh
    assert Path(facts["ament_prefix"]) == ws.prefix
    assert Path(facts["ament_share"]) == ws.share
    sim_files = _tree(ws.src / "sim") if (ws.src / "sim").is_dir() else set()
    assert sim_files, "sim/ holds no files, so the install has no share/vila_nav/sim and share_dir() fails"
    assert "share_dir_error" not in facts, facts.get("share_dir_error")
    assert Path(facts["share_dir"]) == ws.share


def test_every_console_script_resolves(ws):
    scripts = ws.probe()["scripts"]
    assert REQUIRED_SCRIPTS <= set(scripts), f"entry points: {sorted(scripts)}"
    broken = {name: s for name, s in scripts.items() if "error" in s or not s["callable"]}
    assert not broken, f"console scripts that do not resolve to a callable: {broken}"
    for name, s in scripts.items():
        assert Path(s["module_file"]).is_relative_to(ws.site_packages()), (name, s)
    # one executable per entry point in lib/vila_nav, and nothing else there
    assert set(scripts) == ws.scripts_dir()


def test_installed_launch_files_start_installed_executables(ws):
    # what `ros2 launch vila_nav X.launch.py` loads: valid Python naming executables of this package
    launch_files = sorted((ws.share / "launch").glob("*.launch.py"))
    for path in launch_files:
        tree = ast.parse(path.read_text(), filename=str(path))
        named = {
            kw.value.value
            for node in ast.walk(tree) if isinstance(node, ast.Call)
            for kw in node.keywords
            if kw.arg == "executable" and isinstance(kw.value, ast.Constant)
        }
        assert named <= ws.scripts_dir(), f"{path.name} starts {sorted(named - ws.scripts_dir())}, not installed"


def test_package_data_mirrored_in_site_packages(ws):
    # vila_nav/assets (the shipped model) travels inside the Python package, subfolders included
    src_root = ws.src / PACKAGE / "assets"
    dst_root = ws.site_packages() / PACKAGE / "assets"
    expected = _tree(src_root) if src_root.is_dir() else set()
    installed = _tree(dst_root) if dst_root.is_dir() else set()
    assert installed == expected, (
        f"vila_nav/assets: missing {sorted(expected - installed)[:10]}, extra {sorted(installed - expected)[:10]}"
    )


def test_package_data_patterns_work_with_humble_setuptools(ws):
    # Ubuntu 22.04 (ROS 2 Humble) ships setuptools 59.6: `**` in package_data (supported from
    # 62.3) matches one folder level only there, silently dropping files of the shipped model.
    code = (
        "import json, setuptools; from distutils.core import run_setup; "
        "print('DATA ' + json.dumps(run_setup('setup.py', stop_after='init').package_data))"
    )
    res = _run([sys.executable, "-c", code], ws.src, ws.env)
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("DATA ")]
    assert res.returncode == 0 and lines, res.stdout + res.stderr
    patterns = [pat for pats in json.loads(lines[-1][len("DATA "):]).values() for pat in pats]
    assert not [pat for pat in patterns if "**" in pat], f"recursive globs in package_data: {patterns}"


def test_installed_script_runs_like_ros2_run(ws):
    # `ros2 run vila_nav vila-nav --help` executes <prefix>/lib/vila_nav/vila-nav
    res = _in_workspace(ws.install, [str(ws.prefix / "lib" / PACKAGE / "vila-nav"), "--help"], ws.root, ws.env)
    assert res.returncode == 0, res.stderr
    assert "usage: vila-nav" in res.stdout


def test_versions_agree(ws):
    catkin_pkg = pytest.importorskip("catkin_pkg.package")
    manifest = catkin_pkg.parse_package(str(REPO / "package.xml"))
    facts = ws.probe()
    assert manifest.version == _setup_py_version(ws) == facts["dist_version"] == facts["version"]


# ---------------------------------------------------------------------------------------------
# --symlink-install (what developers on the robot use)
# ---------------------------------------------------------------------------------------------


def test_symlink_install(symlink_ws):
    ws = symlink_ws
    assert COLCON_FALLBACK_WARNING not in ws.output, ws.output[-3000:]
    assert ws.source_added == [], f"colcon build wrote into src/vila_nav: {ws.source_added[:20]}"
    marker = ws.prefix / "share" / "ament_index" / "resource_index" / "packages" / PACKAGE
    assert marker.exists()
    # data files are links back to the sources: edits show up without a rebuild
    assert (ws.share / "package.xml").resolve() == (ws.src / "package.xml").resolve()
    for folder, pattern in DATA_TREES:
        for src in (ws.src / folder).glob(pattern):
            if src.is_file():
                rel = src.relative_to(ws.src)
                assert (ws.share / rel).resolve() == src.resolve(), f"share/vila_nav/{rel} is not linked"
    assert REQUIRED_SCRIPTS <= ws.scripts_dir()
    facts = ws.probe()
    assert Path(facts["vila_nav_file"]).resolve().is_relative_to(ws.src.resolve()), facts["vila_nav_file"]
    assert Path(facts["ament_share"]) == ws.share
    broken = {n: s for n, s in facts["scripts"].items() if "error" in s or not s["callable"]}
    assert not broken, broken
    # the package imports from the source tree, so the data resolves there (same files)
    assert "share_dir_error" not in facts, facts.get("share_dir_error")
    assert Path(facts["share_dir"]).resolve() in {ws.src.resolve(), ws.share.resolve()}


# ---------------------------------------------------------------------------------------------
# Manifest and configuration files (no build needed)
# ---------------------------------------------------------------------------------------------


def test_package_xml():
    catkin_pkg = pytest.importorskip("catkin_pkg.package")
    warnings: list[str] = []
    manifest = catkin_pkg.parse_package(str(REPO / "package.xml"), warnings=warnings)
    manifest.validate(warnings=warnings)  # raises InvalidPackage on errors
    assert warnings == []
    assert manifest.name == PACKAGE
    assert manifest.package_format == 3
    assert manifest.get_build_type() == "ament_python"
    exec_depends = {d.name for d in manifest.exec_depends}
    assert REQUIRED_EXEC_DEPENDS <= exec_depends, f"missing exec_depend: {sorted(REQUIRED_EXEC_DEPENDS - exec_depends)}"
    # the ament index marker's file name is the package name
    assert (REPO / "resource" / PACKAGE).is_file()


def test_setup_cfg_puts_scripts_where_ros2_run_looks():
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(REPO / "setup.cfg")
    assert cfg.get("install", "install_scripts", fallback=None) == SCRIPT_DIR
    assert cfg.get("develop", "script_dir", fallback=None) == SCRIPT_DIR
