"""Typed dataclass configs: overrides from the CLI (``key=value``), YAML files and keyword arguments.

Every field of a config dataclass carries a one-line help text in ``field(metadata={"help": ...})`` (or the
``help()`` shortcut below) so ``ganzoo info NAME`` can print it. Values from strings are parsed by the field's
type, never by ``eval``.

A config class may define ``validate(self) -> None``. :func:`apply_overrides` calls it on every config it builds
(defaults, tag, YAML and ``--set`` applied), so a bad value is refused when the variant is configured, before any
network or dataset is built. It checks ranges and combinations and raises :class:`ganzoo.errors.ConfigError` with
one line naming the field, the bad value and what is valid (``"nz must be >= 1, got 0"``);
the CLI prints that line and exits with status 2. :func:`require` does the common checks; an unknown name (a loss,
a dataset) raises the registry's did-you-mean error, :class:`ganzoo.errors.UnknownNameError`. A config may also
define ``check_limits(self) -> None``, which :func:`apply_overrides` calls after ``validate()``: checks that cost
more than a comparison (the variant configs' parameter count, :meth:`ganzoo.variant_config.GANConfig.check_limits`).
Numbers are finite: ``nan`` and ``inf`` are refused for every float field.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from pathlib import Path
from typing import Any, TypeVar, Union

from .errors import ConfigError, UnknownNameError

T = TypeVar("T")

#: The largest seed (``--seed``, ``train: seed:``): seeds are combined with ranks, epochs and steps before they reach
#: a generator, which takes 64 bits, so 32 bits leave room for that arithmetic (and are what other tools accept).
MAX_SEED = 2**32 - 1

#: The longest run (``--steps``): step numbers go through float64 learning-rate schedules and int64 tensors, and
#: every integer up to 2^53 is exact in both; no run comes near it (10^6 steps a second would take 285 years).
MAX_STEPS = 2**53

#: The most samples one evaluation draws (``ganzoo eval -n``, ``--eval-n``): 20 times FID's customary 50,000.
MAX_EVAL_N = 1_000_000


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


def require(
    config: Any,
    *,
    at_least_1: tuple[str, ...] = (),
    non_negative: tuple[str, ...] = (),
    positive: tuple[str, ...] = (),
    fraction: tuple[str, ...] = (),
    stage_share: tuple[str, ...] = (),
) -> None:
    """Range checks shared by the configs' ``validate()``: integers that must be >= 1, numbers >= 0 and > 0,
    fractions in [0, 1], and shares of ``--steps`` that size a stage in (0, 1).

    :param config: the config being validated.
    :param at_least_1: names of fields that must be >= 1 (widths, counts, batch size).
    :param non_negative: names of fields that must be >= 0 (loss weights, optional sizes where 0 means off).
    :param positive: names of fields that must be > 0 (learning rates, weights).
    :param fraction: names of fields that must lie in [0, 1] (shares of a run).
    :param stage_share: names of fields that must lie in (0, 1): a stage's ``fraction`` (:class:`ganzoo.Stage`), so
        that neither that stage nor the rest of the run is left empty by construction.
    :raises ganzoo.errors.ConfigError: naming the first field out of range and its value.
    """
    # Each test is written so that NaN fails it (every comparison with NaN is false).
    for name in at_least_1:
        if not getattr(config, name) >= 1:
            raise ConfigError(f"{name} must be >= 1, got {getattr(config, name)}")
    for name in non_negative:
        if not getattr(config, name) >= 0:
            raise ConfigError(f"{name} must be >= 0, got {getattr(config, name)}")
    for name in positive:
        if not getattr(config, name) > 0:
            raise ConfigError(f"{name} must be > 0, got {getattr(config, name)}")
    for name in fraction:
        if not 0.0 <= getattr(config, name) <= 1.0:
            raise ConfigError(f"{name} must be a fraction in [0, 1], got {getattr(config, name)}")
    for name in stage_share:
        if not 0.0 < getattr(config, name) < 1.0:
            raise ConfigError(f"{name} must be in (0, 1), got {getattr(config, name)}")


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
        value: float | None = None
        if isinstance(raw, (int, float)):
            try:
                value = float(raw)
            except OverflowError:  # an int beyond the float range
                raise ConfigError(f"{key}: {raw!r} is out of the range of a number") from None
        elif isinstance(raw, str):
            try:
                value = float(raw)
            except ValueError:
                pass
        if value is None:
            raise ConfigError(f"{key}: {raw!r} is not a number")
        # No config number means anything as nan or infinity; it would only surface as a nan loss steps later.
        if not math.isfinite(value):
            raise ConfigError(f"{key}: {raw!r} is not a finite number")
        return value
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
    if not isinstance(overrides, dict):
        got = type(overrides).__name__
        raise ConfigError(f"a config of {type(config).__qualname__} must be a mapping of field: value, not a {got}")
    for key, raw in overrides.items():
        if not isinstance(key, str):
            kind = type(config).__qualname__
            raise ConfigError(f"config key {key!r} of {kind} is not a name; valid: {', '.join(names)}")
        if key not in names:
            raise UnknownNameError(f"config key of {type(config).__qualname__}", key, names)
        changes[key] = parse_value(raw, hints[key], key)
    new = dataclasses.replace(config, **changes)
    validate = getattr(new, "validate", None)
    if callable(validate):
        validate()
    check_limits = getattr(new, "check_limits", None)
    if callable(check_limits):
        check_limits()
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


#: The sections of a run's YAML file (``ganzoo train --config``) and what each holds.
RUN_SECTIONS: dict[str, str] = {
    "model": "a mapping of config field: value",
    "train": "a mapping of training setting: value",
    "data": "a data spec string",
}


def load_yaml(path: str | Path, sections: dict[str, str] | None = None) -> dict[str, Any]:
    """Read a YAML config file that holds a mapping.

    :param path: the file (UTF-8 text).
    :param sections: when given, the only top-level keys allowed, each with what it holds (:data:`RUN_SECTIONS`):
        a key whose text names a mapping must hold a mapping (or nothing), one naming a string a string.
    :returns: the mapping; an empty file gives ``{}``.
    :raises ganzoo.errors.ConfigError: a missing or unreadable file, text that is not UTF-8 or not YAML, a
        top-level value that is not a mapping, or a section of the wrong shape.
    """
    import yaml

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {str(p)!r} does not exist (or is not a regular file)")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"config file {str(p)!r} is not UTF-8 text (byte {e.start}); save it as UTF-8") from None
    except OSError as e:
        raise ConfigError(f"config file {str(p)!r} cannot be read: {e.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        at = f" at line {where.line + 1}" if where is not None else ""
        what = getattr(e, "problem", None) or type(e).__name__
        raise ConfigError(f"config file {str(p)!r} is not valid YAML{at}: {what}") from None
    except RecursionError:
        raise ConfigError(f"config file {str(p)!r} nests too deeply to be a config") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {str(p)!r} must hold a mapping of key: value, not a {type(data).__name__}")
    if sections is not None:
        unknown = [k for k in data if k not in sections]
        if unknown:
            raise ConfigError(
                f"config file {str(p)!r}: key {unknown[0]!r} is not valid; use {', '.join(f'{k}:' for k in sections)}"
            )
        for key, holds in sections.items():
            value = data.get(key)
            wants_mapping = "mapping" in holds
            ok = value is None or (isinstance(value, dict) if wants_mapping else isinstance(value, str))
            if ok and wants_mapping and value:
                ok = all(isinstance(k, str) for k in value)
            if not ok:
                raise ConfigError(f"config file {str(p)!r}: section {key}: must hold {holds}, got {value!r}"[:300])
    return data


def check_batch_size(config: Any, batch_size: int, option: str = "--batch-size") -> None:
    """Validate ``config`` as if its ``batch_size`` field were ``batch_size``: the batch size a run is given
    (``--batch-size``) replaces the config's, so the config's checks (divisible by ``pack`` ...) must hold for it.

    :param config: a config with a ``batch_size`` field (others are left alone).
    :param batch_size: the batch size the run uses.
    :param option: how the user gave it, for the message.
    :raises ganzoo.errors.ConfigError: naming ``option`` and its value, then the config's complaint.
    """
    if getattr(config, "batch_size", None) in (None, batch_size):
        return
    try:
        apply_overrides(config, {"batch_size": batch_size})
    except ConfigError as e:
        raise ConfigError(f"{option} {batch_size}: {e}") from None


def config_differences(recorded: Any, config: Any) -> list[str]:
    """The fields where ``config`` differs from a recorded config (a checkpoint's or model file's header), as
    ``"nz=2 (now 3)"``: what to name when a file does not fit a model built from ``config``.

    :param recorded: the recorded ``field: value`` mapping (anything else gives no differences).
    :param config: the live config dataclass.
    :returns: one entry per differing field, in field order; fields the record lacks or cannot be read are skipped.
    """
    if not isinstance(recorded, dict):
        return []
    hints = _resolved_types(type(config))
    out = []
    for f in dataclasses.fields(config):
        if f.name not in recorded:
            continue
        try:
            then = parse_value(recorded[f.name], hints[f.name], f.name)
        except ConfigError:
            continue
        now = getattr(config, f.name)
        if then != now:
            out.append(f"{f.name}={then!r} (now {now!r})")
    return out


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Rebuild a config from ``to_dict`` output (e.g. model-file metadata); unknown keys are an error."""
    return apply_overrides(cls(), data)
