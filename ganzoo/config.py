"""Typed dataclass configs: overrides from the CLI (``key=value``), YAML files and keyword arguments.

Every field of a config dataclass carries a one-line help text in ``field(metadata={"help": ...})`` (or the
``help()`` shortcut below) so ``ganzoo info NAME`` can print it. Values from strings are parsed by the field's
type, never by ``eval``.

A config class may define ``validate(self) -> None``. :func:`apply_overrides` calls it on every config it builds
(defaults, tag, YAML and ``--set`` applied), so a bad value is refused when the variant is configured, before any
network or dataset is built. It checks ranges and combinations and raises :class:`ganzoo.errors.ConfigError` with
one line naming the field, the bad value and what is valid (``"nz must be >= 1, got 0"``);
the CLI prints that line and exits with status 2. :func:`require` does the common checks; an unknown name (a loss,
a dataset) raises the registry's did-you-mean error, :class:`ganzoo.errors.UnknownNameError`.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Any, TypeVar, Union

from .errors import ConfigError, UnknownNameError

T = TypeVar("T")


def help(text: str, default: Any = dataclasses.MISSING, **kw: Any) -> Any:  # noqa: A001 - reads well in configs
    """A dataclass field with a help text: ``lr: float = help("Adam learning rate", 2e-4)``.

    :param text: one line that ``ganzoo info NAME`` prints beside the field.
    :param default: the default value; a list, dict or set default is copied for each config.
    :param kw: passed on to :func:`dataclasses.field`.
    :returns: the :func:`dataclasses.field` to assign in the class body.
    """
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda d=default: type(d)(d), metadata={"help": text}, **kw)
    return dataclasses.field(default=default, metadata={"help": text}, **kw)


def require(config: Any, *, at_least_1: tuple[str, ...] = (), positive: tuple[str, ...] = ()) -> None:
    """Range checks shared by the variant configs' ``validate()``: integers that must be >= 1 and numbers > 0.

    :param config: the config being validated.
    :param at_least_1: names of fields that must be >= 1 (widths, counts, batch size).
    :param positive: names of fields that must be > 0 (learning rates, weights).
    :raises ganzoo.errors.ConfigError: naming the first field out of range and its value.
    """
    for name in at_least_1:
        if getattr(config, name) < 1:
            raise ConfigError(f"{name} must be >= 1, got {getattr(config, name)}")
    for name in positive:
        if getattr(config, name) <= 0:
            raise ConfigError(f"{name} must be > 0, got {getattr(config, name)}")


def field_help(cls: type) -> dict[str, str]:
    return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(cls)}


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def parse_value(raw: Any, tp: Any, key: str) -> Any:
    """Convert ``raw`` (a string from the command line, or a YAML/Python value) to the field type ``tp``."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (Union, types.UnionType):
        if raw is None or (isinstance(raw, str) and raw.lower() in ("none", "null")):
            if type(None) in args:
                return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return parse_value(raw, a, key)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(f"{key}: cannot read {raw!r} as {_type_name(tp)}")
    if origin is typing.Literal:
        for a in args:
            if raw == a or (isinstance(raw, str) and str(a) == raw):
                return a
        raise ConfigError(f"{key}: {raw!r} is not one of {', '.join(repr(a) for a in args)}")
    if origin in (tuple, list):
        if isinstance(raw, str):
            text = raw.strip()
            if text.startswith("["):
                try:
                    raw = json.loads(text)
                except json.JSONDecodeError as e:
                    raise ConfigError(f"{key}: {raw!r} is not a list ({e.msg})") from None
            else:
                text = text.strip("()")
                raw = [p.strip() for p in text.split(",") if p.strip()] if text else []
        if not isinstance(raw, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {raw!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(raw) != len(args):
                raise ConfigError(f"{key}: expected {len(args)} values, got {len(raw)}")
            return tuple(parse_value(v, a, key) for v, a in zip(raw, args))
        inner = args[0] if args else Any
        return origin(parse_value(v, inner, key) for v in raw)
    if tp is Any:
        return raw
    if tp is bool:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.lower() in ("1", "true", "yes", "on"):
            return True
        if isinstance(raw, str) and raw.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{key}: {raw!r} is not a boolean (use true or false)")
    if tp is int:
        if isinstance(raw, bool):
            raise ConfigError(f"{key}: {raw!r} is not an integer")
        if isinstance(raw, int):
            return raw
        if isinstance(raw, float) and raw.is_integer():
            return int(raw)
        if isinstance(raw, str):
            try:
                return int(raw.replace("_", ""))
            except ValueError:
                try:
                    f = float(raw)
                except ValueError:
                    f = None
                if f is not None and f.is_integer():
                    return int(f)
        raise ConfigError(f"{key}: {raw!r} is not an integer")
    if tp is float:
        if isinstance(raw, bool):
            raise ConfigError(f"{key}: {raw!r} is not a number")
        if isinstance(raw, (int, float)):
            return float(raw)
        if isinstance(raw, str):
            try:
                return float(raw)
            except ValueError:
                pass
        raise ConfigError(f"{key}: {raw!r} is not a number")
    if tp is str:
        if isinstance(raw, str):
            return raw
        raise ConfigError(f"{key}: {raw!r} is not a string")
    raise ConfigError(f"{key}: unsupported config type {_type_name(tp)}")


def _resolved_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def apply_overrides(config: T, overrides: dict[str, Any]) -> T:
    """A copy of ``config`` with ``overrides`` applied; unknown keys get a did-you-mean, bad values a clear error."""
    hints = _resolved_types(type(config))
    names = [f.name for f in dataclasses.fields(config)]
    changes = {}
    for key, raw in overrides.items():
        if key not in names:
            raise UnknownNameError(f"config key of {type(config).__qualname__}", key, names)
        changes[key] = parse_value(raw, hints[key], key)
    new = dataclasses.replace(config, **changes)
    validate = getattr(new, "validate", None)
    if callable(validate):
        validate()
    return new


def parse_assignments(items: list[str] | None) -> dict[str, str]:
    """``["a=1", "b=x"]`` -> ``{"a": "1", "b": "x"}``."""
    out: dict[str, str] = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key=value")
        key, value = item.split("=", 1)
        key = key.strip()
        if not key:
            raise ConfigError(f"override {item!r} has an empty key")
        out[key] = value
    return out


def load_yaml(path: str | Path) -> dict[str, Any]:
    import yaml

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {str(p)!r} does not exist")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {str(p)!r} is not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {str(p)!r} must hold a mapping of key: value")
    return data


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Rebuild a config from ``to_dict`` output (e.g. model-file metadata); unknown keys are an error."""
    return apply_overrides(cls(), data)
