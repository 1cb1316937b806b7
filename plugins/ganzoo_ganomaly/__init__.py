"""GANomaly anomaly detection (Akcay et al. 2018) for ganzoo: the ``ganomaly`` variant and ``ganzoo score``."""

from __future__ import annotations

from collections.abc import Callable

from ganzoo import hookimpl

from .variant import GANomaly, best_f1_threshold, calibrate, evaluate

__all__ = ["GANomaly", "best_f1_threshold", "calibrate", "evaluate"]


@hookimpl
def ganzoo_register_variants(register: Callable[..., None]) -> None:
    register(GANomaly)


@hookimpl
def ganzoo_register_commands(register: Callable[..., None]) -> None:
    from .score import configure, run

    register(
        "score",
        "anomaly scores and verdicts of images (or AUROC/AUPRC on a dataset) from an anomaly model",
        configure,
        run,
        tasks=("anomaly",),
    )
