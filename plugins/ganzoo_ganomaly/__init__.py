"""GANomaly anomaly detection (Akcay et al. 2018) for ganzoo: the ``ganomaly`` variant and ``ganzoo score``."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

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
    )


@hookimpl
def ganzoo_train_event(event: str, trainer: Any, info: dict[str, Any]) -> None:
    # A GANomaly run ends calibrated: normalization and threshold from the val split of its own data, saved in the
    # exported model, so `ganzoo score` gives verdicts straight away.
    variant = getattr(trainer, "variant", None)
    if event != "end" or not isinstance(variant, GANomaly) or not variant.config.calibrate:
        return
    from ganzoo.data.base import DataError
    from ganzoo.train.data import build_dataset

    try:
        val = build_dataset(trainer.data_spec, variant, split="val", seed=trainer.config.seed)
        record = calibrate(variant, val)
    except (DataError, ValueError) as e:
        print(f"ganzoo: ganomaly: not calibrated ({e})", file=sys.stderr)
        return
    trainer.export()
    if trainer.config.progress:
        f1 = record.get("f1")
        print(
            f"ganzoo: calibrated on the val split ({record['n_normal']} normal, {record['n_anomalous']} anomalous): "
            f"threshold {record['threshold']:.4f}" + (f", F1 {f1:.3f}, AUROC {record['auroc']:.3f}" if f1 else ""),
            file=sys.stderr,
        )
