"""The plugin manager: the core's own plugin, entry points of group ``ganzoo``, environment switches.

Every plugin, the core's own included, is loaded by its module name: the core's (:data:`CORE_PLUGIN`, always loaded)
and then the entry points, sorted by name. This module imports no module that registers anything, so the plugin
layer sits below everything it loads.

Environment switches, in the pytest style:

* ``GANZOO_PLUGINS=a,b``: load only these entry-point plugins (an allowlist; the core's own plugin always loads).
* ``GANZOO_DISABLE_PLUGIN_AUTOLOAD=1``: load no entry-point plugin except those named in ``GANZOO_PLUGINS``.
* ``GANZOO_TRACE_PLUGINS=1``: print every hook call to stderr.

A plugin that fails to import, has a misspelt hook implementation, raises in a registration hook or claims a name
another plugin registered first is *disabled*: it is unregistered as a whole, reported by name with its error (a
warning, ``ganzoo plugins``, and the "unknown name" errors), and the rest of the zoo keeps working.
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

#: The plugin name and module of the core's own plugin (built-in losses, datasets, metrics and commands).
CORE_PLUGIN = ("ganzoo", "ganzoo.builtins")


@dataclass
class PluginInfo:
    """One loaded (or failed) plugin, as ``ganzoo plugins`` shows it.

    :param name: the plugin's name: its entry-point name (``dcgan``), ``ganzoo`` for the core's own plugin, or the
        name given to :func:`register_plugin`.
    :param module: the module (or object) implementing its hooks.
    :param distribution: the installed distribution providing it (``pip uninstall`` takes this name), if any.
    :param version: the distribution's version.
    :param error: why the plugin is disabled, or ``None`` while it works.
    :param registered: what it registered: kind (``"variant"``, ``"loss"`` ...) -> sorted names.
    """

    name: str
    module: str
    distribution: str | None = None
    version: str | None = None
    error: str | None = None
    registered: dict[str, list[str]] = field(default_factory=dict)


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
    """The process-wide plugin manager, loading plugins on first use (lazy and idempotent).

    :returns: the pluggy plugin manager; a new one after :func:`reset`.
    """
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

    core_name, core_module = CORE_PLUGIN
    _infos[core_name] = PluginInfo(core_name, core_module, "ganzoo", _version("ganzoo"))
    # A broken core is a bug, not a plugin to isolate: let its import error through.
    pm.register(importlib.import_module(core_module), name=core_name)

    allow = _env_list("GANZOO_PLUGINS")
    autoload = not _truthy("GANZOO_DISABLE_PLUGIN_AUTOLOAD")
    for ep in _entry_points():
        if allow is not None and ep.name not in allow:
            continue
        if allow is None and not autoload:
            continue
        if ep.name in _infos:  # the same entry-point name from two distributions: the first one found wins
            continue
        dist = getattr(ep, "dist", None)
        info = PluginInfo(ep.name, ep.value, dist.name if dist else None, dist.version if dist else None)
        _infos[ep.name] = info
        try:
            pm.register(ep.load(), name=ep.name)
        except Exception as e:  # a broken plugin must not take the zoo down; it is reported by name instead
            info.error = f"{type(e).__name__}: {e}"
            warnings.warn(f"ganzoo plugin {ep.name!r} failed to load and is disabled: {info.error}", stacklevel=3)
    for name, obj in _extra:
        if pm.get_plugin(name) is None:
            pm.register(obj, name=name)
            _infos[name] = PluginInfo(name, getattr(obj, "__name__", type(obj).__name__))
    # A misspelt hookimpl (e.g. ganzoo_register_variant) fails loudly instead of being silently ignored.
    while True:
        try:
            pm.check_pending()
            break
        except pluggy.PluginValidationError as e:
            name = pm.get_name(e.plugin) or repr(e.plugin)
            _infos.setdefault(name, PluginInfo(name, getattr(e.plugin, "__name__", repr(e.plugin))))
            _disable(pm, name, f"invalid hook implementation: {e}", f"ganzoo plugin {name!r} is disabled: {e}")
    return pm


def _disable(pm: pluggy.PluginManager, name: str, error: str, warning: str) -> None:
    info = _infos[name]
    info.error = error
    info.registered = {}
    if pm.get_plugin(name) is not None:
        pm.unregister(name=name)
    warnings.warn(warning, stacklevel=4)


def disable(name: str, error: str, warning: str) -> None:
    """Disable a loaded plugin as a whole: unregister all its hook implementations, record ``error`` for
    ``ganzoo plugins`` and warn once.

    :param name: the plugin's name.
    :param error: one line saying why, kept in :attr:`PluginInfo.error`.
    :param warning: the warning to show.
    """
    with _lock:
        _disable(get_plugin_manager(), name, error, warning)


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def register_plugin(obj: Any, name: str | None = None) -> None:
    """Register a plugin object (a module or an instance with hookimpls) from code, e.g. in a test or notebook.

    :param obj: the object carrying ``@ganzoo.hookimpl`` functions or methods.
    :param name: its plugin name (default: the module's or the class's name).
    """
    name = name or getattr(obj, "__name__", None) or type(obj).__name__
    with _lock:
        _extra.append((name, obj))
        reset()


def unregister_plugin(name: str) -> None:
    """Remove a plugin registered with :func:`register_plugin`.

    :param name: its plugin name.
    """
    with _lock:
        _extra[:] = [(n, o) for n, o in _extra if n != name]
        reset()


def reset() -> None:
    """Forget the loaded plugins; the next use reloads them (after installing a plugin or changing the environment
    switches). The registries follow, since they are tied to the plugin manager that filled them."""
    global _pm
    with _lock:
        _pm = None


def plugin_infos() -> dict[str, PluginInfo]:
    """Every plugin found, in load order (the core first, then entry points by name, then plugins from code).

    :returns: plugin name -> :class:`PluginInfo`.
    """
    get_plugin_manager()
    return _infos


def failed_plugins() -> str:
    """The plugins that failed to load or were disabled, as one line for "unknown name" errors.

    :returns: ``"plugins that failed to load: foo: ImportError: ...; bar: ..."``, or ``""`` when none failed.
    """
    failed = [f"{i.name}: {i.error.splitlines()[0][:200]}" for i in plugin_infos().values() if i.error]
    return "plugins that failed to load: " + "; ".join(failed) if failed else ""


def hookimpls(hook_name: str) -> list[pluggy.HookImpl]:
    """The implementations of one hook (see :func:`plugin_infos` for the plugins' order).

    :param hook_name: a hook of :mod:`ganzoo.hookspecs`.
    :returns: pluggy's ``HookImpl`` objects, each with its ``plugin_name``.
    """
    return getattr(get_plugin_manager().hook, hook_name).get_hookimpls()


def trace(message: str) -> None:
    """Write to pluggy's hook tracer (active with ``GANZOO_TRACE_PLUGINS``).

    :param message: one line.
    """
    get_plugin_manager().trace.root.get("hook")(message)
