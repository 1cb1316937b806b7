"""Name -> object registries filled by the plugin hooks: variants, losses, datasets, metrics, commands.

Names are lowercase ``family[.tag]``; a tag is a named preset of config overrides. Unknown names raise
:class:`ganzoo.errors.UnknownNameError` with the closest matches, never a silent fallback.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError, PluginError, UnknownNameError
from .plugins import hookimpls, plugin_infos, trace
from .variant import GANVariant, Task

NAME_RE = re.compile(r"^[a-z][a-z0-9_-]*$")


@dataclass(frozen=True)
class VariantSpec:
    name: str
    cls: type[GANVariant]
    plugin: str
    task: Task
    tags: dict[str, dict[str, Any]] = field(default_factory=dict)
    description: str = ""


@dataclass(frozen=True)
class Entry:
    """A registered loss, dataset, metric or command."""

    name: str
    obj: Any
    plugin: str
    tasks: tuple[str, ...] = ()
    help: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


_lock = threading.RLock()
_cache: dict[str, dict[str, Any]] = {}


def _reset_cache() -> None:
    with _lock:
        _cache.clear()


def _collect(hook: str, kind: str, make: Callable[..., tuple[str, Any]]) -> dict[str, Any]:
    """Call every implementation of ``hook`` with its own ``register`` callback, attributing each name to its
    plugin. A plugin whose hook raises is reported by name and skipped; two plugins claiming a name is an error."""
    with _lock:
        if hook in _cache:
            return _cache[hook]
        infos = plugin_infos()
        found: dict[str, Any] = {}
        for impl in hookimpls(hook):
            plugin = impl.plugin_name
            mine: dict[str, Any] = {}

            def register(*args: Any, _mine: dict = mine, _plugin: str = plugin, **kwargs: Any) -> None:
                name, obj = make(_plugin, *args, **kwargs)
                if name in _mine:
                    raise PluginError(f"plugin {_plugin!r} registers the {kind} {name!r} twice")
                _mine[name] = obj

            # Registration hooks are called one implementation at a time (to attribute names to plugins), which
            # bypasses pluggy's own call tracing, so trace them here.
            trace(f"{hook} [{plugin}]")
            try:
                impl.function(register=register)
            except Exception as e:
                info = infos.get(plugin)
                msg = f"{type(e).__name__}: {e}"
                if info is not None:
                    info.error = (info.error + "; " if info.error else "") + f"{hook}: {msg}"
                import warnings

                warnings.warn(f"ganzoo plugin {plugin!r} failed in {hook} and is skipped: {msg}", stacklevel=2)
                continue
            for name, obj in mine.items():
                if name in found:
                    other = found[name].plugin
                    raise PluginError(
                        f"the {kind} name {name!r} is registered by two plugins, {other!r} and {plugin!r}; "
                        f"uninstall one or choose with GANZOO_PLUGINS"
                    )
                found[name] = obj
            if plugin in infos:
                infos[plugin].registered.setdefault(kind, []).extend(sorted(mine))
        _cache[hook] = found
        return found


def _make_variant(plugin: str, cls: Any) -> tuple[str, VariantSpec]:
    if not (isinstance(cls, type) and issubclass(cls, GANVariant)):
        raise PluginError(f"register() needs a GANVariant subclass, got {cls!r}")
    name = getattr(cls, "name", "")
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise PluginError(f"variant class {cls.__qualname__} has an invalid name {name!r} (lowercase, a-z0-9_-)")
    try:
        task = Task(cls.task)
    except (AttributeError, ValueError):
        raise PluginError(f"variant {name!r} has no valid task (one of {', '.join(t.value for t in Task)})") from None
    if not dataclasses.is_dataclass(getattr(cls, "Config", None)):
        raise PluginError(f"variant {name!r} needs a dataclass Config")
    for tag in cls.tags:
        if not NAME_RE.match(tag):
            raise PluginError(f"variant {name!r} has an invalid tag {tag!r}")
    doc = cls.description or (cls.__doc__ or "").strip().splitlines()[0] if (cls.description or cls.__doc__) else ""
    return name, VariantSpec(name, cls, plugin, task, dict(cls.tags), doc)


def _make_entry(plugin: str, name: str, obj: Any, tasks: Any = (), help: str = "", **extra: Any) -> tuple[str, Entry]:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise PluginError(f"invalid name {name!r} (lowercase letters, digits, _ and -)")
    tasks = tuple(str(Task(t)) for t in (tasks or ()))
    return name, Entry(name, obj, plugin, tasks, help, extra)


def _make_command(plugin: str, name: str, help: str, configure: Callable, run: Callable) -> tuple[str, Entry]:
    return _make_entry(plugin, name, run, (), help, configure=configure)


def variants() -> dict[str, VariantSpec]:
    return _collect("ganzoo_register_variants", "variant", _make_variant)


def losses() -> dict[str, Entry]:
    return _collect("ganzoo_register_losses", "loss", _make_entry)


def datasets() -> dict[str, Entry]:
    return _collect("ganzoo_register_datasets", "dataset", _make_entry)


def metrics() -> dict[str, Entry]:
    return _collect("ganzoo_register_metrics", "metric", _make_entry)


def commands() -> dict[str, Entry]:
    return _collect("ganzoo_register_commands", "command", _make_command)


def _all_names() -> list[str]:
    names = []
    for spec in variants().values():
        names.append(spec.name)
        names.extend(f"{spec.name}.{t}" for t in spec.tags)
    return names


def resolve(name: str) -> tuple[VariantSpec, str | None, dict[str, Any]]:
    """``"dcgan.mnist"`` -> (spec of dcgan, "mnist", the tag's overrides)."""
    if not isinstance(name, str):
        raise ConfigError(f"a variant name must be a string, got {name!r}")
    family, _, tag = name.strip().lower().partition(".")
    specs = variants()
    if family not in specs:
        raise UnknownNameError("variant", name, _all_names())
    spec = specs[family]
    if not tag:
        return spec, None, {}
    if tag not in spec.tags:
        raise UnknownNameError(f"tag of {family}", name, [f"{family}.{t}" for t in spec.tags] or [family])
    return spec, tag, dict(spec.tags[tag])


def list_variants(pattern: str | None = None, task: str | Task | None = None, tags: bool = True) -> list[str]:
    """Registered names, ``family`` and ``family.tag``, optionally filtered by a shell pattern and a task."""
    if task is not None:
        try:
            task = Task(task)
        except ValueError:
            raise UnknownNameError("task", str(task), [t.value for t in Task]) from None
    out = []
    for spec in variants().values():
        if task is not None and spec.task != task:
            continue
        names = [spec.name] + ([f"{spec.name}.{t}" for t in spec.tags] if tags else [])
        out.extend(n for n in names if pattern is None or fnmatch.fnmatchcase(n, pattern))
    return sorted(out)


def get(kind: str, name: str) -> Entry:
    table = {"loss": losses, "dataset": datasets, "metric": metrics, "command": commands}[kind]()
    if name not in table:
        raise UnknownNameError(kind, name, table)
    return table[name]
