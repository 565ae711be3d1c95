"""Typed configuration: dataclass schemas composed with hydra.

Every tool has one schema (a dataclass owned by the module that uses it) and one preset file
`config/<name>.yaml` whose defaults list starts with `<name>_schema`, the schema registered here.
Values compose as: schema defaults <- preset file <- command-line overrides (`key=value`,
hydra syntax). The result is an instance of the schema, validated by its __post_init__, so a typo
or a wrong type is a clear error before anything runs.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Sequence, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration that cannot be composed or does not validate."""


def _has_preset(folder: Path, name: str) -> bool:
    """Whether `config/<name>.yaml` exists in `folder` (else the schema's defaults are the base)."""
    return (folder / f"{name}.yaml").is_file()


def compose(schema: type[T], name: str, overrides: Sequence[str] = (), config_dir: Path | None = None) -> T:
    """Compose `config/<name>.yaml` over `schema` with hydra overrides; return a schema instance.

    Without a preset file the schema's defaults are used. Raises ConfigError with hydra's message
    for unknown keys, wrong types or malformed overrides.
    """
    if not dataclasses.is_dataclass(schema):
        raise TypeError(f"{schema!r} is not a dataclass")
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.config_store import ConfigStore
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from vila_nav.paths import config_dir as default_config_dir

    folder = Path(config_dir) if config_dir is not None else default_config_dir()
    schema_name = f"{name}_schema"
    ConfigStore.instance().store(name=schema_name, node=schema)
    primary = name if _has_preset(folder, name) else schema_name
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(folder.resolve()), version_base="1.3"):
            cfg = hydra_compose(config_name=primary, overrides=list(overrides))
        obj = OmegaConf.to_object(cfg)
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(f"config '{name}' ({folder}): {exc}") from exc
    except (TypeError, ValueError) as exc:  # raised by a schema's __post_init__ validation
        raise ConfigError(f"config '{name}': {exc}") from exc
    finally:
        GlobalHydra.instance().clear()
    if not isinstance(obj, schema):
        raise ConfigError(f"config '{name}' did not compose to {schema.__name__}")
    return obj


def to_yaml(cfg: object) -> str:
    """The composed config as YAML (for logs and result folders)."""
    from omegaconf import OmegaConf

    return OmegaConf.to_yaml(OmegaConf.structured(cfg))


def command_config(schema: type[T], name: str, argv: Sequence[str], *, prog: str, doc: str | None) -> T | int:
    """The command line of a hydra-backed `vila-nav` sub-command.

    Accepts `--help`, `--print-config` and hydra `key=value` overrides of `config/<name>.yaml`.
    Returns the composed config, or an exit code to return at once: 0 after --help or
    --print-config, 2 for a configuration that does not compose (the message names the problem).
    `doc` is the command module's docstring: its first paragraph is the description, the rest
    the epilog of --help.
    """
    import argparse
    import logging
    import sys

    head, _, tail = (doc or prog).strip().partition("\n\n")
    parser = argparse.ArgumentParser(prog=prog, description=head, epilog=tail or None,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    from vila_nav.paths import config_dir

    # What the overrides apply to: the preset file where there is one, else the schema's defaults.
    base = f"config/{name}.yaml" if _has_preset(config_dir(), name) else f"the {schema.__name__} defaults"
    parser.add_argument("overrides", nargs="*", help=f"hydra overrides of {base} (key=value)")
    parser.add_argument("--print-config", action="store_true", help="print the composed configuration and exit")
    try:
        args = parser.parse_args(list(argv))
    except SystemExit as exc:  # --help (0) or an argparse usage error (2)
        return int(exc.code or 0)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        cfg = compose(schema, name, args.overrides)
    except ConfigError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    if args.print_config:
        print(to_yaml(cfg), end="")
        return 0
    return cfg
