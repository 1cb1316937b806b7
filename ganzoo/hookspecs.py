"""Hook specifications of ganzoo. A plugin implements any of them with ``@ganzoo.hookimpl``.

Registration hooks take a ``register`` callback (objects carry the behaviour, hooks only announce them). pluggy calls
every implementation of a hook, so per-variant behaviour belongs on the variant class, not in hooks.
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
    """Register metrics and feature extractors.

    :param register: call ``register(name, metric, tasks=(...), help="...")``; ``metric`` is a callable whose
        signature the metric's documentation gives.
    """


@hookspec
def ganzoo_register_commands(register: Callable[..., None]) -> None:
    """Add sub-commands to the ``ganzoo`` command line.

    :param register: call ``register(name, help, configure, run)`` where ``configure(parser)`` adds arguments to an
        ``argparse.ArgumentParser`` and ``run(args) -> int | None`` executes the command.
    """


@hookspec
def ganzoo_train_event(event: str, trainer: Any, info: dict[str, Any]) -> None:
    """Observe training. Called on the main process only.

    :param event: one of ``"start"``, ``"log"`` (every ``log_every`` steps, with the averaged losses),
        ``"sample"`` (a sample grid was written), ``"checkpoint"`` (a checkpoint was written), ``"stage"`` (a new
        stage began), ``"skip"`` (a step was skipped for non-finite values) and ``"end"``.
    :param trainer: the :class:`ganzoo.train.Trainer` running.
    :param info: event details (``step``, ``losses``, ``path`` ...).
    """
