"""Name -> object registries filled by the plugin hooks: variants, losses, datasets, metrics, commands, downloads.

Names are lowercase ``family[.tag]``; a tag is a named preset of config overrides. Unknown names raise
:class:`ganzoo.errors.UnknownNameError` with the closest matches (and the plugins that failed to load, which may be
where a missing name went), never a silent fallback.
"""

from __future__ import annotations

import dataclasses
import enum
import fnmatch
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import hookspecs
from .errors import ConfigError, PluginError, UnknownNameError
from .plugins import disable, failed_plugins, get_plugin_manager, hookimpls, plugin_infos, trace
from .variant import GANVariant, Task

NAME_RE = re.compile(r"^[a-z][a-z0-9_-]*$")


@dataclass(frozen=True)
class VariantSpec:
    """A registered variant family: its class, the plugin that registered it, its task and tags."""

    name: str
    cls: type[GANVariant]
    plugin: str
    task: Task
    tags: dict[str, dict[str, Any]] = field(default_factory=dict)
    description: str = ""


@dataclass(frozen=True)
class Entry:
    """A registered loss, dataset, metric, command or download.

    :param name: the registered name.
    :param obj: the object: a loss, a dataset factory, a metric, a command's ``run`` function, a download's URL.
    :param plugin: the plugin that registered it.
    :param tasks: the :class:`ganzoo.Task` values it serves (datasets: the batch schema they yield; commands: the
        tasks whose models they take).
    :param help: one line for listings.
    :param extra: further keyword arguments given to ``register`` (a command's ``configure``, a download's
        ``reader`` and ``sha256``).
    """

    name: str
    obj: Any
    plugin: str
    tasks: tuple[str, ...] = ()
    help: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class MetricKind(str, enum.Enum):
    """The calling convention of a registered metric: what its callable takes and returns. Images are uint8
    (or 0..255 float) tensors; ``ganzoo metrics NAME A B`` computes every metric whose kind
    :attr:`compares_image_sets`."""

    PAIRED = "paired"
    """``fn(pred: list[Tensor], ref: list[Tensor], *, y_channel=False, shave=0) -> dict[str, float | list]``:
    ``C x H x W`` images paired by position (sizes may differ between pairs); the mean under the metric's name and
    the per-image values under ``"per_image"``."""
    DISTRIBUTION = "distribution"
    """``fn(a: Iterable[Tensor], b: Iterable[Tensor], *, device="cpu", **options) -> dict[str, float]``: ``a`` and
    ``b`` yield ``B x C x H x W`` batches, ``a`` being the real/reference set; ``log`` (``str -> None``) receives
    progress lines; options such as ``weights``/``resize`` (Inception) or ``domain``/``image_size``/``channels``/
    ``min_accuracy`` (domain classifier)."""
    POINTS = "points"
    """``fn(samples: Tensor (N, 2), *, data="ring8" | "grid25" | centres=Tensor, std=float) -> dict``."""
    SCORES = "scores"
    """``fn(scores: Tensor (N,), labels: Tensor (N,)) -> float``; label 1 = positive (anomalous), higher score =
    more positive."""
    RETRIEVAL = "retrieval"
    """``fn(image_feats, text_feats, true_index=None, candidates=100, generator=None) -> float``."""

    @property
    def compares_image_sets(self) -> bool:
        """Whether ``ganzoo metrics NAME A B`` can compute it between two image folders or data sets."""
        return self in (MetricKind.PAIRED, MetricKind.DISTRIBUTION)

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class MetricEntry(Entry):
    """A registered metric: an :class:`Entry` whose ``obj`` follows the calling convention ``kind``.

    :param kind: the :class:`MetricKind` of ``obj``.
    """

    kind: MetricKind = field(kw_only=True)


_lock = threading.RLock()
_state: dict[str, Any] = {"pm": None, "tables": None, "busy": False}


def _registration_hooks() -> list[str]:
    return sorted(n for n in vars(hookspecs) if n.startswith("ganzoo_register_"))


def _kind(hook: str) -> tuple[str, Callable[..., tuple[str, Any]]]:
    """What a registration hook registers and how; a hook missing from ``_KINDS`` registers generic entries."""
    return _KINDS.get(hook, (hook.removeprefix("ganzoo_register_"), _make_entry))


def _tables() -> dict[str, dict[str, Any]]:
    """Every registration hook's names, collected in one pass over all plugins and cached until the plugin manager is
    reloaded. One pass, because disabling a plugin (its hook raised, or it claims a name another plugin registered
    first) removes its registrations from every hook, not only from the one that failed."""
    with _lock:
        pm = get_plugin_manager()
        if _state["pm"] is pm and _state["tables"] is not None:
            return _state["tables"]
        if _state["busy"]:
            raise PluginError(
                "a plugin's registration hook looked a name up in the ganzoo registry while it was being filled; "
                "look names up when they are used, not when they are registered"
            )
        _state["busy"] = True
        try:
            tables = _collect_all()
        finally:
            _state["busy"] = False
        _state["pm"], _state["tables"] = get_plugin_manager(), tables
        return tables


def _collect_all() -> dict[str, dict[str, Any]]:
    infos = plugin_infos()
    order = {name: i for i, name in enumerate(infos)}
    hooks = _registration_hooks()
    found: dict[str, dict[str, dict[str, Any]]] = {}  # plugin -> hook -> name -> object
    failed: dict[str, tuple[str, str]] = {}  # plugin -> (error, warning)
    for hook in hooks:
        kind, make = _kind(hook)
        for impl in hookimpls(hook):
            plugin = impl.plugin_name
            if plugin in failed:
                continue
            mine: dict[str, Any] = {}

            def register(*args: Any, _mine: dict = mine, _plugin: str = plugin, _kind=kind, _make=make, **kw: Any):
                name, obj = _make(_plugin, *args, **kw)
                if name in _mine:
                    raise PluginError(f"plugin {_plugin!r} registers the {_kind} {name!r} twice")
                _mine[name] = obj

            # Registration hooks are called one implementation at a time (to attribute names to plugins), which
            # bypasses pluggy's own call tracing, so trace them here.
            trace(f"{hook} [{plugin}]")
            try:
                impl.function(register=register)
            except Exception as e:
                msg = f"{hook}: {type(e).__name__}: {e}"
                failed[plugin] = (msg, f"ganzoo plugin {plugin!r} failed in {msg}; the plugin is disabled")
                continue
            found.setdefault(plugin, {})[hook] = mine
    tables: dict[str, dict[str, Any]] = {hook: {} for hook in hooks}
    accepted: list[str] = []
    # Plugins in load order (the core first, then entry points by name): of two plugins claiming one name, the one
    # loaded later is disabled as a whole, so the names that stay registered are consistent across kinds.
    for plugin in sorted(found, key=lambda p: order.get(p, len(order))):
        if plugin in failed:
            continue
        clash = next(((h, n) for h, names in found[plugin].items() for n in names if n in tables[h]), None)
        if clash is not None:
            hook, name = clash
            kind = _kind(hook)[0]
            other = tables[hook][name].plugin
            failed[plugin] = (
                f"the {kind} name {name!r} is also registered by plugin {other!r}, loaded first",
                f"ganzoo plugin {plugin!r} is disabled: the {kind} name {name!r} is registered by two plugins, "
                f"{other!r} and {plugin!r}; uninstall one or choose with GANZOO_PLUGINS",
            )
            continue
        for hook, names in found[plugin].items():
            tables[hook].update(names)
        accepted.append(plugin)
    for plugin, (error, warning) in failed.items():
        if plugin in infos:
            disable(plugin, error, warning)
    for plugin in accepted:
        if plugin in infos:
            infos[plugin].registered = {_kind(h)[0]: sorted(names) for h, names in found[plugin].items() if names}
    return tables


def _collect(hook: str) -> dict[str, Any]:
    return _tables()[hook]


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


def _tasks(tasks: Any) -> tuple[str, ...]:
    try:
        return tuple(str(Task(t)) for t in (tasks or ()))
    except ValueError as e:
        raise PluginError(f"{e}; valid tasks: {', '.join(t.value for t in Task)}") from None


def _make_entry(plugin: str, name: str, obj: Any, tasks: Any = (), help: str = "", **extra: Any) -> tuple[str, Entry]:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise PluginError(f"invalid name {name!r} (lowercase letters, digits, _ and -)")
    return name, Entry(name, obj, plugin, _tasks(tasks), help, extra)


def _make_metric(
    plugin: str, name: str, metric: Any, kind: Any = None, tasks: Any = (), help: str = ""
) -> tuple[str, MetricEntry]:
    try:
        kind = MetricKind(kind)
    except ValueError:
        valid = ", ".join(k.value for k in MetricKind)
        raise PluginError(f"metric {name!r} has kind {kind!r}; register it with kind= one of: {valid}") from None
    if not callable(metric):
        raise PluginError(f"metric {name!r} is not callable: {metric!r}")
    name, entry = _make_entry(plugin, name, metric, tasks, help)
    return name, MetricEntry(entry.name, entry.obj, entry.plugin, entry.tasks, entry.help, kind=kind)


def _make_command(
    plugin: str, name: str, help: str, configure: Callable, run: Callable, tasks: Any = ()
) -> tuple[str, Entry]:
    return _make_entry(plugin, name, run, tasks, help, configure=configure)


def _make_download(
    plugin: str, name: str, url: str, reader: str, help: str = "", sha256: str | None = None
) -> tuple[str, Entry]:
    if not isinstance(url, str) or not url.endswith((".zip", ".tar.gz", ".tgz", ".tar")):
        raise PluginError(f"download {name!r}: the URL must name a .zip, .tar.gz, .tgz or .tar archive, got {url!r}")
    return _make_entry(plugin, name, url, (), help or url, reader=reader, sha256=sha256)


_EVALUATOR_MEMBERS = ("name", "tasks", "metrics", "default_n", "applies", "evaluate")


def _make_evaluator(plugin: str, evaluator: Any) -> tuple[str, Entry]:
    # The contract is ganzoo.metrics.evaluators.Evaluator; checked by member here so that the registry does not
    # import the metrics package.
    missing = [m for m in _EVALUATOR_MEMBERS if not hasattr(evaluator, m)]
    if missing:
        raise PluginError(f"evaluator {evaluator!r} lacks {', '.join(missing)} (see ganzoo.metrics.evaluators)")
    if not evaluator.tasks or not evaluator.metrics:
        raise PluginError(f"evaluator {evaluator.name!r} names no tasks or no metrics")
    return _make_entry(plugin, evaluator.name, evaluator, evaluator.tasks, getattr(evaluator, "help", ""))


# Registration hook -> (the kind of thing it registers, how a register() call becomes (name, object)).
_KINDS: dict[str, tuple[str, Callable[..., tuple[str, Any]]]] = {
    "ganzoo_register_variants": ("variant", _make_variant),
    "ganzoo_register_losses": ("loss", _make_entry),
    "ganzoo_register_datasets": ("dataset", _make_entry),
    "ganzoo_register_metrics": ("metric", _make_metric),
    "ganzoo_register_commands": ("command", _make_command),
    "ganzoo_register_downloads": ("download", _make_download),
    "ganzoo_register_evaluators": ("evaluator", _make_evaluator),
}


def variants() -> dict[str, VariantSpec]:
    """:returns: family name -> :class:`VariantSpec` of every registered variant."""
    return _collect("ganzoo_register_variants")


def losses() -> dict[str, Entry]:
    """:returns: name -> :class:`Entry` of every registered adversarial loss."""
    return _collect("ganzoo_register_losses")


def datasets() -> dict[str, Entry]:
    """:returns: name -> :class:`Entry` of every registered dataset (``obj`` is its factory)."""
    return _collect("ganzoo_register_datasets")


def metrics() -> dict[str, MetricEntry]:
    """:returns: name -> :class:`MetricEntry` of every registered metric (with its :class:`MetricKind`)."""
    return _collect("ganzoo_register_metrics")


def commands() -> dict[str, Entry]:
    """:returns: name -> :class:`Entry` of every plugin command (``obj`` is ``run``, ``extra["configure"]``)."""
    return _collect("ganzoo_register_commands")


def commands_for(task: str | Task) -> list[Entry]:
    """The commands registered for ``task``, e.g. to suggest what to do with a model just trained.

    :param task: a :class:`ganzoo.Task` value.
    :returns: their entries, sorted by name.
    """
    task = str(Task(task))
    return sorted((e for e in commands().values() if task in e.tasks), key=lambda e: e.name)


def evaluators() -> dict[str, Entry]:
    """:returns: name -> :class:`Entry` of every registered evaluator (``obj`` is the
    :class:`ganzoo.metrics.evaluators.Evaluator`), in registration order (the core's first)."""
    return _collect("ganzoo_register_evaluators")


def downloads() -> dict[str, Entry]:
    """:returns: name -> :class:`Entry` of every downloadable dataset archive (``obj`` is its URL,
    ``extra["reader"]`` the dataset that reads the extracted folder)."""
    return _collect("ganzoo_register_downloads")


def unknown(kind: str, name: str, choices: Any) -> UnknownNameError:
    """The error for an unknown registered name: the closest matches, and the plugins that failed to load (a
    name a broken plugin would have registered is missing for that reason).

    :param kind: what was looked up (``"variant"``, ``"dataset"`` ...).
    :param name: the name asked for.
    :param choices: the valid names.
    :returns: the error to raise.
    """
    return UnknownNameError(kind, name, choices, note=failed_plugins())


def _all_names() -> list[str]:
    names = []
    for spec in variants().values():
        names.append(spec.name)
        names.extend(f"{spec.name}.{t}" for t in spec.tags)
    return names


def resolve(name: str) -> tuple[VariantSpec, str | None, dict[str, Any]]:
    """Look a variant name up: ``"family.tag"`` -> (the family's spec, ``"tag"``, the tag's overrides).

    :param name: ``family`` or ``family.tag``.
    :returns: the spec, the tag (``None`` without one) and a copy of the tag's config overrides.
    :raises UnknownNameError: with the closest matches and the plugins that failed to load.
    """
    if not isinstance(name, str):
        raise ConfigError(f"a variant name must be a string, got {name!r}")
    family, _, tag = name.strip().lower().partition(".")
    specs = variants()
    if family not in specs:
        raise unknown("variant", name, _all_names())
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
    """One registered entry by kind and name.

    :param kind: ``"loss"``, ``"dataset"``, ``"metric"``, ``"evaluator"``, ``"command"`` or ``"download"``.
    :param name: its registered name.
    :returns: the :class:`Entry`.
    :raises UnknownNameError: with the closest matches and the plugins that failed to load.
    """
    table = {
        "loss": losses,
        "dataset": datasets,
        "metric": metrics,
        "evaluator": evaluators,
        "command": commands,
        "download": downloads,
    }
    entries = table[kind]()
    if name not in entries:
        raise unknown(kind, name, entries)
    return entries[name]
