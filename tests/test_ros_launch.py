"""Launch files and the parameters file agree with what setup.py installs and the nodes declare.

launch / launch_ros are not on PyPI, so where they are missing (here) every launch file is
checked statically: parsed with ast, only the public launch / launch_ros API imported, every
Node(...) names package 'vila_nav' and an executable that setup.py installs as a console script
(whose target function exists), every .yaml it names exists in config/, the launch arguments
the issue asks for are declared and every one read is declared, and every parameter override
is a parameter the node declares. Where launch_ros is importable (a sourced ROS install) the
description is also built and the nodes are generated with the default arguments.
The parameters file itself is checked against the nodes' typed configs in every case.
"""
from __future__ import annotations

import ast
import importlib
import importlib.util
import re
from pathlib import Path

import pytest
import yaml

from vila_nav.ros.params import docs, leaves

ROOT = Path(__file__).resolve().parents[1]
LAUNCH_FILES = sorted((ROOT / "launch").glob("*.launch.py"))
PUBLIC_API = {
    "launch": {"LaunchDescription"},
    "launch.actions": {"DeclareLaunchArgument", "OpaqueFunction", "IncludeLaunchDescription", "GroupAction", "LogInfo"},
    "launch.substitutions": {"LaunchConfiguration", "PathJoinSubstitution", "TextSubstitution"},
    "launch.conditions": {"IfCondition", "UnlessCondition"},
    "launch_ros.actions": {"Node"},
    "launch_ros.substitutions": {"FindPackageShare"},
    "launch_ros.parameter_descriptions": {"ParameterValue"},
}
REQUIRED_ARGS = {
    "robot.launch.py": {"params_file", "model_path", "quantization", "camera_topic", "cmd_vel_topic", "use_sim_time"},
    "sim.launch.py": {"params_file", "model_path", "quantization", "use_sim_time", "episode_id", "split", "dataset_path"},
}


def console_scripts() -> dict[str, str]:
    """name -> "module:function" from setup.py's entry_points (parsed, not executed)."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    found: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            for k, v in zip(node.keys, node.values):
                if isinstance(k, ast.Constant) and k.value == "console_scripts" and isinstance(v, ast.List):
                    for item in v.elts:
                        name, target = (s.strip() for s in item.value.split("="))
                        found[name] = target
    return found


def node_config_for(executable: str):
    if executable == "vila_nav_node":
        from vila_nav.ros.node_config import NodeConfig

        return NodeConfig
    from vila_nav.ros.bridge_config import BridgeConfig

    return BridgeConfig


def declared(cls) -> set[str]:
    return {name for name, _v, _h in leaves(cls())} | {"use_sim_time"}


def string_value(node: ast.AST, consts: dict[str, str]) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name):
        return consts.get(node.id)
    return None


class LaunchFacts(ast.NodeVisitor):
    """What a launch file does, read from its syntax tree."""

    def __init__(self, tree: ast.Module) -> None:
        self.consts = {
            t.id: n.value.value
            for n in tree.body if isinstance(n, ast.Assign) and isinstance(n.value, ast.Constant)
            for t in n.targets if isinstance(t, ast.Name) and isinstance(n.value.value, str)
        }
        self.imports: list[tuple[str, str]] = []
        self.nodes: list[dict[str, str | None]] = []
        self.declared: set[str] = set()
        self.read: set[str] = set()
        self.strings: list[str] = []
        self.override_keys: list[str] = []
        self.visit(tree)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        self.imports += [(node.module or "", a.name) for a in node.names]

    def visit_Import(self, node: ast.Import) -> None:
        self.imports += [(a.name, "*") for a in node.names]

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str):
            self.strings.append(node.value)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        key = string_value(node.slice, self.consts)
        if key and "." in key and isinstance(node.ctx, ast.Store):
            self.override_keys.append(key)
        self.generic_visit(node)

    def visit_Dict(self, node: ast.Dict) -> None:
        self.override_keys += [k.value for k in node.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)
                               and "." in k.value]
        self.generic_visit(node)

    def visit_Tuple(self, node: ast.Tuple) -> None:  # ("model_path", "model.path") pairs
        vals = [string_value(e, self.consts) for e in node.elts]
        if len(vals) == 2 and all(vals) and "." in vals[1] and " " not in vals[1] and not vals[1].endswith(".yaml"):
            self.override_keys.append(vals[1])
            self.read.add(vals[0])
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        fn = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
        first = string_value(node.args[0], self.consts) if node.args else None
        if fn == "Node":
            kw = {k.arg: string_value(k.value, self.consts) for k in node.keywords}
            self.nodes.append(kw)
        elif fn == "DeclareLaunchArgument" and first:
            self.declared.add(first)
        elif fn in ("LaunchConfiguration", "arg") and first:
            self.read.add(first)
        self.generic_visit(node)


@pytest.fixture(scope="module")
def scripts() -> dict[str, str]:
    return console_scripts()


def test_there_are_launch_files():
    assert {p.name for p in LAUNCH_FILES} >= {"robot.launch.py", "sim.launch.py"}


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_file_statically(path: Path, scripts):
    facts = LaunchFacts(ast.parse(path.read_text(), filename=str(path)))
    assert "generate_launch_description" in {n.name for n in ast.parse(path.read_text()).body if isinstance(n, ast.FunctionDef)}
    for module, name in facts.imports:
        assert module in PUBLIC_API and name in PUBLIC_API[module], f"{path.name}: non-public import {module}.{name}"
    assert facts.nodes, f"{path.name} starts no Node"
    for node in facts.nodes:
        assert node.get("package") == "vila_nav"
        exe = node.get("executable")
        assert exe in scripts, f"{path.name}: executable {exe!r} is not a console script in setup.py ({sorted(scripts)})"
        module, func = scripts[exe].split(":")
        spec = importlib.util.find_spec(module)
        assert spec is not None and re.search(rf"^def {func}\(", Path(spec.origin).read_text(), re.M), scripts[exe]
        assert node.get("name") == exe  # the parameters file's section names
    yamls = [s for s in facts.strings if s.endswith(".yaml")]
    assert yamls, f"{path.name} names no parameters file"
    for name in yamls:
        assert (ROOT / "config" / name).is_file(), f"{path.name}: config/{name} does not exist"
    assert REQUIRED_ARGS[path.name] <= facts.declared, f"missing launch arguments: {REQUIRED_ARGS[path.name] - facts.declared}"
    assert facts.read <= facts.declared, f"read but never declared: {facts.read - facts.declared}"
    known = set().union(*(declared(node_config_for(n["executable"])) for n in facts.nodes))
    assert facts.override_keys and set(facts.override_keys) <= known, set(facts.override_keys) - known


def test_setup_installs_launch_and_config():
    text = (ROOT / "setup.py").read_text()  # data_files: a glob or the whole tree, into share/vila_nav
    assert re.search(r"""["']launch/\*\.launch\.py["']|tree\(["']launch["']\)""", text)
    assert re.search(r"""["']config/\*\.yaml["']|tree\(["']config["']\)""", text)
    assert re.search(r"install_scripts\s*=\s*\$base/lib/vila_nav", (ROOT / "setup.cfg").read_text())
    assert "<name>vila_nav</name>" in (ROOT / "package.xml").read_text()


def test_parameters_file_matches_the_nodes():
    """Every key of config/robot.yaml is a declared parameter, and the values validate."""
    from vila_nav.ros.bridge_config import BridgeConfig
    from vila_nav.ros.node_config import NodeConfig

    data = yaml.safe_load((ROOT / "config" / "robot.yaml").read_text())
    assert set(data) == {"vila_nav_node", "vila_nav_sim_bridge"}

    def flat(d: dict, prefix: str = "") -> dict:
        out = {}
        for k, v in d.items():
            if isinstance(v, dict):
                out.update(flat(v, f"{prefix}{k}."))
            else:
                out[prefix + k] = v
        return out

    for section, cls in (("vila_nav_node", NodeConfig), ("vila_nav_sim_bridge", BridgeConfig)):
        values = flat(data[section]["ros__parameters"])
        assert set(values) <= declared(cls), set(values) - declared(cls)
        defaults = {name: value for name, value, _h in leaves(cls())}
        # The file documents the defaults: a value that differs must be deliberate.
        differs = {k: (v, defaults[k]) for k, v in values.items() if k in defaults and v != defaults[k]
                   and not (isinstance(v, list) and list(defaults[k]) == v)}
        assert not differs, f"{section}: robot.yaml differs from the declared defaults: {differs}"
    # The node's section is its complete reference: every parameter, each with a description.
    node_values = flat(data["vila_nav_node"]["ros__parameters"])
    assert declared(NodeConfig) - {"use_sim_time"} <= set(node_values), declared(NodeConfig) - set(node_values)
    for cls in (NodeConfig, BridgeConfig):
        undescribed = sorted(name for name, text in docs(cls()).items() if not text)
        assert not undescribed, f"{cls.__name__}: no `doc` for ros2 param describe: {undescribed}"


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_description_builds_when_launch_ros_is_installed(path: Path, scripts):
    pytest.importorskip("launch_ros")  # `launch` alone would be this repository's launch/ folder
    from launch import LaunchContext, LaunchDescription
    from launch.actions import DeclareLaunchArgument, OpaqueFunction

    spec = importlib.util.spec_from_file_location(path.stem.replace(".", "_"), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    desc = module.generate_launch_description()
    assert isinstance(desc, LaunchDescription)
    args = {e.name: e for e in desc.entities if isinstance(e, DeclareLaunchArgument)}
    assert REQUIRED_ARGS[path.name] <= set(args)
    context = LaunchContext()
    for name, a in args.items():
        default = "".join(s.perform(context) for s in a.default_value) if a.default_value else ""
        context.launch_configurations[name] = default if name != "params_file" else str(ROOT / "config" / "robot.yaml")
    nodes = []
    for e in desc.entities:
        if isinstance(e, OpaqueFunction):
            nodes += e.execute(context) or []
    assert nodes
    for n in nodes:
        assert n.node_package == "vila_nav" and n.node_executable in scripts


def test_a_number_given_for_a_text_parameter_is_its_text():
    """`-p episode.episode_id:=4` reaches the node as an integer (rcl types it)."""
    from vila_nav.ros.bridge_config import BridgeConfig
    from vila_nav.ros.params import ParameterError, _coerce, read

    assert _coerce("episode.episode_id", 4, str) == "4" and _coerce("x", 1.5, str) == "1.5"
    with pytest.raises(ParameterError, match="'x'"):
        _coerce("x", True, str)

    class Node:  # read() only calls get_parameter(name).value
        def get_parameter(self, name):
            value = 4 if name == "episode.episode_id" else dict((n, v) for n, v, _h in leaves(BridgeConfig()))[name]
            return type("P", (), {"value": list(value) if isinstance(value, tuple) else value})()

    assert read(Node(), BridgeConfig).episode.episode_id == "4"
