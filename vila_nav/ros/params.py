"""Typed dataclass configs <-> ROS 2 parameters (one source of truth for a node's settings).

A node's configuration is a dataclass whose fields are plain values or nested dataclasses (the
library's own configs: VelocityLimits, ParserConfig, FrameHistoryConfig ...). Every leaf becomes
one ROS parameter named by its dotted path ("limits.max_linear_mps"), declared with the
dataclass default and a description, so `ros2 param list/describe` show them, and a
`ros__parameters` YAML may nest them:

    vila_nav_node:
      ros__parameters:
        limits: {max_linear_mps: 0.3}

Reading builds the dataclass back, coercing ROS's types to the field's annotation (a YAML `1`
for a float field, arrays to lists/tuples, a number for a text field to its text: rcl types
`-p episode.episode_id:=4` as an integer) and running the dataclass's own validation, so a bad
value is one clear error naming the parameter. Fields of types ROS cannot hold (dicts) are
skipped and keep their defaults. No rclpy import here: the node object is passed in.
"""
from __future__ import annotations

import dataclasses
import math
import typing
from typing import Any, Iterator, TypeVar

T = TypeVar("T")


class ParameterError(ValueError):
    """A ROS parameter value that does not fit its config field."""


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _base(hint: Any) -> tuple[Any, tuple]:
    """(origin type, args) of an annotation with Optional[...] unwrapped."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Union or (origin is not None and str(origin) == "types.UnionType"):
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1:
            return _base(rest[0])
    if origin is None and hasattr(hint, "__origin__"):
        origin = hint.__origin__
    return (origin if origin is not None else hint), args


def _is_ros_leaf(hint: Any) -> bool:
    origin, args = _base(hint)
    if origin in (bool, int, float, str):
        return True
    if origin in (list, tuple):
        return all(a in (bool, int, float, str, Ellipsis) for a in args) if args else False
    return False


def _excluded(cls: type) -> frozenset[str]:
    """Dotted names a config class keeps out of ROS (class attribute `ros_exclude`)."""
    return frozenset(getattr(cls, "ros_exclude", ()))


def _walk(cfg: Any, prefix: str, exclude: frozenset[str] | None) -> Iterator[tuple[str, Any, Any, dataclasses.Field]]:
    """(dotted name, value, annotation, field) of every ROS-representable leaf, depth first."""
    exclude = _excluded(type(cfg)) if exclude is None else exclude
    hints = _hints(type(cfg))
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        name = prefix + f.name
        if name in exclude:
            continue
        if dataclasses.is_dataclass(value):
            yield from _walk(value, name + ".", exclude)
        elif _is_ros_leaf(hints[f.name]):
            yield name, value, hints[f.name], f


def leaves(cfg: Any, prefix: str = "", exclude: frozenset[str] | None = None) -> Iterator[tuple[str, Any, Any]]:
    """(dotted name, value, annotation) of every ROS-representable leaf of a dataclass instance.

    A top-level class attribute `ros_exclude` (tuple of dotted names) keeps derived fields out.
    """
    for name, value, hint, _field in _walk(cfg, prefix, exclude):
        yield name, value, hint


def _ros_default(value: Any) -> Any:
    """A value rclpy accepts as a parameter default (tuples -> lists)."""
    if isinstance(value, tuple):
        return list(value)
    return value


def docs(cfg: Any, prefix: str = "", exclude: frozenset[str] | None = None) -> dict[str, str]:
    """Dotted name -> description (the field's `field(metadata={"doc": ...})`, "" if it has none)
    of every ROS leaf of a dataclass instance: what `ros2 param describe` shows."""
    return {name: str(f.metadata.get("doc", "")) for name, _v, _h, f in _walk(cfg, prefix, exclude)}


def declare(node, defaults: Any, prefix: str = "") -> None:
    """Declare every leaf of the dataclass instance `defaults` on `node` (values from YAML win).

    Parameters use dynamic typing so a YAML `1` for a float is accepted; `read` checks types.
    """
    from rcl_interfaces.msg import ParameterDescriptor

    described = docs(defaults, prefix)
    for name, value, _hint in leaves(defaults, prefix):
        desc = ParameterDescriptor(description=described[name] or name, dynamic_typing=True)
        node.declare_parameter(name, _ros_default(value), desc)


def _coerce(name: str, value: Any, hint: Any) -> Any:
    origin, args = _base(hint)
    if value is None:
        return None
    try:
        if origin is bool:
            if not isinstance(value, bool):
                raise TypeError
            return value
        if origin is int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError
            return value
        if origin is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError
            return float(value)
        if origin is str:
            # rcl types `-p episode.episode_id:=4` (and launch_ros on Humble a numeric-looking
            # string) as an integer / double: a number given for a text field is its text.
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return str(value)
            if not isinstance(value, str):
                raise TypeError
            return value
        if origin in (list, tuple):
            if isinstance(value, (str, bytes)):
                raise TypeError
            item = args[0] if args else Any
            items = [_coerce(f"{name}[{i}]", v, item) if item is not Any else v for i, v in enumerate(list(value))]
            return tuple(items) if origin is tuple else items
    except TypeError:
        raise ParameterError(
            f"parameter '{name}' must be {getattr(hint, '__name__', str(hint))}, got {type(value).__name__} {value!r}"
        ) from None
    return value


def read(node, cls: type[T], prefix: str = "") -> T:
    """Build `cls` (a dataclass type whose defaults were declared with `declare`) from `node`'s
    parameters. Raises ParameterError naming the parameter on a wrong type or a failed check."""

    exclude = _excluded(cls)

    def build(kind: type, pre: str, defaults: Any) -> Any:
        hints = _hints(kind)
        kwargs: dict[str, Any] = {}
        for f in dataclasses.fields(kind):
            name = pre + f.name
            default = getattr(defaults, f.name)
            if name in exclude:
                kwargs[f.name] = default
            elif dataclasses.is_dataclass(default):
                kwargs[f.name] = build(type(default), name + ".", default)
            elif _is_ros_leaf(hints[f.name]):
                kwargs[f.name] = _coerce(name, node.get_parameter(name).value, hints[f.name])
            else:
                kwargs[f.name] = default
        try:
            return kind(**kwargs)
        except (TypeError, ValueError) as exc:
            raise ParameterError(f"parameters '{pre or kind.__name__}': {exc}") from exc

    return build(cls, prefix, cls())


def to_yaml_dict(cfg: Any) -> dict:
    """Nested dict of a config's ROS leaves (for `ros__parameters` files and docs)."""
    out: dict = {}
    for name, value, _hint in leaves(cfg):
        node = out
        *path, last = name.split(".")
        for p in path:
            node = node.setdefault(p, {})
        if isinstance(value, float) and math.isinf(value):
            value = ".inf" if value > 0 else "-.inf"
        node[last] = _ros_default(value)
    return out
