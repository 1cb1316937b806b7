"""The plugin manager: entry points of group ``ganzoo``, built-in hooks, environment switches.

Environment switches, in the pytest style:

* ``GANZOO_PLUGINS=a,b``: load only these entry-point plugins (an allowlist).
* ``GANZOO_DISABLE_PLUGIN_AUTOLOAD=1``: load no entry-point plugin except those named in ``GANZOO_PLUGINS``.
* ``GANZOO_TRACE_PLUGINS=1``: print every hook call to stderr.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import sys
import threading
import warnings
from dataclasses import dataclass, field
from typing import Any

import pluggy

from . import hookspecs

ENTRY_POINT_GROUP = "ganzoo"


@dataclass
class PluginInfo:
    name: str
    module: str
    distribution: str | None = None
    version: str | None = None
    error: str | None = None
    registered: dict[str, list[str]] = field(default_factory=dict)  # kind -> names


_lock = threading.RLock()
_pm: pluggy.PluginManager | None = None
_infos: dict[str, PluginInfo] = {}
_extra: list[tuple[str, Any]] = []  # plugins registered from code (tests, notebooks)


def _env_list(name: str) -> list[str] | None:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return None
    return [p.strip() for p in raw.split(",") if p.strip()]


def _truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no", "off")


def _entry_points() -> list[importlib.metadata.EntryPoint]:
    return sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name)


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, loading plugins on first use (lazy and idempotent)."""
    global _pm
    with _lock:
        if _pm is None:
            _pm = _load()
        return _pm


def _load() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
    pm.add_hookspecs(hookspecs)
    if _truthy("GANZOO_TRACE_PLUGINS"):
        pm.trace.root.setwriter(lambda msg: sys.stderr.write(msg if msg.endswith("\n") else msg + "\n"))
        pm.enable_tracing()
    _infos.clear()

    from . import builtins as core

    pm.register(core, name="ganzoo")
    _infos["ganzoo"] = PluginInfo("ganzoo", core.__name__, "ganzoo", _version("ganzoo"))

    allow = _env_list("GANZOO_PLUGINS")
    autoload = not _truthy("GANZOO_DISABLE_PLUGIN_AUTOLOAD")
    for ep in _entry_points():
        if allow is not None and ep.name not in allow:
            continue
        if allow is None and not autoload:
            continue
        dist = getattr(ep, "dist", None)
        info = PluginInfo(ep.name, ep.value, dist.name if dist else None, dist.version if dist else None)
        _infos[ep.name] = info
        if pm.get_plugin(ep.name) is not None or pm.is_blocked(ep.name):
            continue
        try:
            module = ep.load()
            pm.register(module, name=ep.name)
        except Exception as e:  # a broken plugin must not take the zoo down; it is reported by name instead
            info.error = f"{type(e).__name__}: {e}"
            warnings.warn(f"ganzoo plugin {ep.name!r} failed to load and is disabled: {info.error}", stacklevel=2)
    for name, obj in _extra:
        if pm.get_plugin(name) is None:
            pm.register(obj, name=name)
            _infos[name] = PluginInfo(name, getattr(obj, "__name__", type(obj).__name__))
    # A misspelt hookimpl (e.g. ganzoo_register_variant) fails loudly instead of being silently ignored: the plugin
    # is disabled and reported by name, the rest of the zoo keeps working.
    while True:
        try:
            pm.check_pending()
            break
        except pluggy.PluginValidationError as e:
            name = pm.get_name(e.plugin) or repr(e.plugin)
            pm.unregister(e.plugin)
            info = _infos.setdefault(name, PluginInfo(name, getattr(e.plugin, "__name__", repr(e.plugin))))
            info.error = f"invalid hook implementation: {e}"
            warnings.warn(f"ganzoo plugin {name!r} is disabled: {e}", stacklevel=2)
    return pm


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def register_plugin(obj: Any, name: str | None = None) -> None:
    """Register a plugin object (a module or an instance with hookimpls) from code, e.g. in a test or notebook."""
    name = name or getattr(obj, "__name__", None) or type(obj).__name__
    with _lock:
        _extra.append((name, obj))
        reset()


def unregister_plugin(name: str) -> None:
    with _lock:
        _extra[:] = [(n, o) for n, o in _extra if n != name]
        reset()


def reset() -> None:
    """Forget loaded plugins and registries; the next use reloads (after changing the environment switches)."""
    global _pm
    with _lock:
        _pm = None
        from . import registry

        registry._reset_cache()


def plugin_infos() -> dict[str, PluginInfo]:
    get_plugin_manager()
    return _infos


def hookimpls(hook_name: str) -> list[pluggy.HookImpl]:
    """The implementations of one hook in registration order (the core first, then entry points by name), so each
    registration can be attributed to its plugin."""
    return getattr(get_plugin_manager().hook, hook_name).get_hookimpls()


def trace(message: str) -> None:
    """Write to pluggy's hook tracer (active with ``GANZOO_TRACE_PLUGINS``)."""
    get_plugin_manager().trace.root.get("hook")(message)
