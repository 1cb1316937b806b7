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
    from .data.builtin import register_builtin

    register_builtin(register)
