"""The core's own plugin: the losses and datasets that ship with ganzoo itself (variants live in plugins/)."""

from __future__ import annotations

from collections.abc import Callable

from .hookspecs import hookimpl


@hookimpl
def ganzoo_register_losses(register: Callable[..., None]) -> None:
    from .losses import BUILTIN_LOSSES

    for cls in BUILTIN_LOSSES:
        register(cls.name, cls(), help=(cls.__doc__ or "").strip().splitlines()[0])


@hookimpl
def ganzoo_register_datasets(register: Callable[..., None]) -> None:
    from .data import anomaly, captions, sr, translation
    from .data.builtin import register_builtin

    # One module per task: unconditional (builtin), paired/unpaired, text-to-image, anomaly, super-resolution.
    register_builtin(register)
    for module in (translation, captions, anomaly, sr):
        module.register_datasets(register)


@hookimpl
def ganzoo_register_metrics(register: Callable[..., None]) -> None:
    from .metrics.builtin import register_metrics

    register_metrics(register)


@hookimpl
def ganzoo_register_evaluators(register: Callable[..., None]) -> None:
    from .metrics.builtin_evaluators import register_evaluators

    register_evaluators(register)


@hookimpl
def ganzoo_register_commands(register: Callable[..., None]) -> None:
    from .metrics.commands import register_commands

    register_commands(register)
