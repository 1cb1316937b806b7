"""Hook specifications of ganzoo. A plugin implements any of them with ``@ganzoo.hookimpl``.

Registration hooks take a ``register`` callback (objects carry the behaviour, hooks only announce them). pluggy calls
every implementation of a hook, so per-variant behaviour belongs on the variant class, not in hooks.

A plugin is enabled or disabled as a whole. If any of its registration hooks raises (an invalid ``register`` call
included), or it registers a name that a plugin loaded before it registered already (the core first, then entry
points by name), the plugin is disabled: none of its registrations in any hook count, its other hooks are no longer
called, one warning names the plugin (and for a name conflict both plugins), ``ganzoo plugins`` shows the error, and
everything else keeps working.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("ganzoo")
hookimpl = pluggy.HookimplMarker("ganzoo")


@hookspec
def ganzoo_register_variants(register: Callable[..., None]) -> None:
    """Register GAN variants.

    :param register: call ``register(VariantClass)`` once per :class:`ganzoo.GANVariant` subclass. The class's
        ``name`` is its family name; its ``tags`` become ``family.tag`` presets.
    """


@hookspec
def ganzoo_register_losses(register: Callable[..., None]) -> None:
    """Register adversarial losses, selectable by name in every variant's ``loss`` config field.

    :param register: call ``register(name, loss)`` where ``loss`` is an :class:`ganzoo.losses.AdversarialLoss`
        instance (or a zero-argument callable returning one).
    """


@hookspec
def ganzoo_register_datasets(register: Callable[..., None]) -> None:
    """Register datasets, selectable with ``--data NAME[:ARG]``.

    :param register: call ``register(name, factory, tasks=(...), help="...")`` where
        ``factory(arg: str | None, request: ganzoo.data.DataRequest) -> torch.utils.data.Dataset`` and ``tasks``
        lists the :class:`ganzoo.Task` values whose batch schema the dataset yields.
    """


@hookspec
def ganzoo_register_metrics(register: Callable[..., None]) -> None:
    """Register metrics: callables that compare images, samples or scores (``ganzoo metrics NAME A B``, and the
    building blocks of evaluators).

    :param register: call ``register(name, metric, kind=..., tasks=(...), help="...")``; ``kind`` (required) is a
        :class:`ganzoo.registry.MetricKind` or its value (``"paired"``, ``"distribution"``, ``"points"``,
        ``"scores"``, ``"retrieval"``) and fixes the calling convention ``metric`` follows; a metric registered
        without a valid kind disables its plugin.
    """


@hookspec
def ganzoo_register_evaluators(register: Callable[..., None]) -> None:
    """Register evaluators: the scoring protocols ``ganzoo eval`` (:func:`ganzoo.metrics.evaluate`) runs for a task.

    :param register: call ``register(evaluator)`` once per :class:`ganzoo.metrics.evaluators.Evaluator`: an object
        with a unique ``name``, the ``tasks`` it scores, the ``metrics`` it computes (selectable with
        ``--metrics``), a ``default_n``, a ``help`` line, ``applies(model, data) -> bool`` and
        ``evaluate(model, ctx: EvalContext) -> Evaluation``. ``ganzoo eval`` runs every registered evaluator of the
        model's task that applies to the model and data.
    """


@hookspec
def ganzoo_register_commands(register: Callable[..., None]) -> None:
    """Add sub-commands to the ``ganzoo`` command line.

    :param register: call ``register(name, help, configure, run, tasks=(...))`` where ``configure(parser)`` adds
        arguments to an ``argparse.ArgumentParser``, ``run(args) -> int | None`` executes the command, and ``tasks``
        lists the :class:`ganzoo.Task` values whose trained models the command takes as its first argument
        (``ganzoo train`` suggests these commands, with their ``help``, after training a model of such a task;
        default: none).
    """


@hookspec
def ganzoo_register_downloads(register: Callable[..., None]) -> None:
    """Register public dataset archives that ``ganzoo data download NAME`` fetches (cached, resumable, checksummed,
    safely extracted into ``<root>/NAME``) and ``ganzoo data list`` shows.

    :param register: call ``register(name, url, reader, help="", sha256=None)`` where ``url`` names a ``.zip``,
        ``.tar.gz``, ``.tgz`` or ``.tar`` archive, ``reader`` is the registered dataset that reads the extracted
        folder (the download ends by suggesting ``--data reader:FOLDER``) and ``sha256`` pins the archive's digest
        (without it, the first download records the digest and later uses verify it).
    """


@hookspec
def ganzoo_train_event(event: str, trainer: Any, info: dict[str, Any]) -> None:
    """Observe training (dashboards, notifications, extra logs). Called on the main process only.

    This hook watches every run, whatever the variant: what a variant itself must do during training belongs in
    its lifecycle methods (:meth:`ganzoo.GANVariant.prepare_data`, :meth:`~ganzoo.GANVariant.on_step_end`,
    :meth:`~ganzoo.GANVariant.on_train_end`), not here. An ``"end"`` hook sees the run complete on disk, the
    model exported.

    :param event: one of ``"start"`` (before the first step), ``"stage"`` (a stage began), ``"log"`` (every
        ``log_every`` steps, with the averaged losses), ``"skip"`` (steps were skipped for non-finite values),
        ``"rollback"`` (training went back to a checkpoint with a lower learning rate), ``"sample"`` (a sample grid
        was written), ``"checkpoint"`` (a checkpoint was written), ``"eval"`` (a training-time evaluation, with its
        ``eval/...`` scores; ``TrainConfig.eval_every``) and ``"end"``.
    :param trainer: the :class:`ganzoo.train.Trainer` running (read it; changing it is not supported).
    :param info: event details (``step``, ``losses``, ``path`` ...).
    """
