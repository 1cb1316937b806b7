"""Shared pieces of the image-to-image experiments ``pix2pix`` and ``cyclegan`` (not an experiment itself).

Both train a CPU-sized tag on its built-in procedural data (``shapes-pairs``, ``shapes-styles``) over several seeds
and score the exported (EMA) generators on the first 200 held-out ``test`` scenes with the plugin's own evaluation
(``ganzoo_pix2pix.evaluate``, what ``python -m ganzoo_pix2pix.evaluate`` prints and docs/variants/pix2pix.md and
cyclegan.md report): PSNR, SSIM and L1 on 0..255 against the ground truth, and two sharpness ratios to the truth
(mean gradient magnitude, spectral energy above half the Nyquist frequency; 1 = as sharp as the truth).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ganzoo_pix2pix.evaluate import comparison_grid
from ganzoo_pix2pix.evaluate import evaluate as score_translation

import ganzoo

from .common import mean_se, train

N_TEST = 200  # held-out test scenes scored, as in the docs
# (key of the plugin's scores, column title, decimals)
METRICS = (
    ("psnr", "PSNR dB", 2),
    ("ssim", "SSIM", 3),
    ("l1", "L1", 2),
    ("grad_ratio", "gradient ratio", 3),
    ("hf_ratio", "high-frequency ratio", 3),
)


def train_and_score(
    tag: str, steps: int, seeds: int, n: int = N_TEST, **train_config: Any
) -> tuple[list[dict[str, Any]], ganzoo.GANVariant]:
    """Train ``tag`` on its default data once per seed and score each model; returns the per-seed results (the
    plugin's score dicts plus ``seed`` and ``train_seconds``) and the seed-0 model (for pictures)."""
    results, first = [], None
    for seed in range(seeds):
        t0 = time.time()
        model = train(tag, None, steps, seed, **train_config)
        seconds = time.time() - t0
        results.append({"seed": seed, "train_seconds": round(seconds, 1), **score_translation(model, n=n)})
        if first is None:
            first = model
    assert first is not None
    return results, first


def columns(metrics: tuple[tuple[str, str, int], ...] = METRICS) -> list[str]:
    return [title for _, title, _ in metrics]


def seeds_row(label: str, results: list[dict[str, Any]], key: str, metrics=METRICS) -> list[str]:
    """``label`` then mean ± s.e. over seeds of each metric of ``results[i][key]``."""
    return [label] + [mean_se([r[key][m] for r in results], d) for m, _, d in metrics]


def single_row(label: str, scores: dict[str, float], metrics=METRICS) -> list[str]:
    """A row measured once (a baseline that does not depend on the training seed)."""
    return [label] + [f"{scores[m]:.{d}f}" for m, _, d in metrics]


def grid(models: list[ganzoo.GANVariant], path: Path, n: int = 6) -> Path:
    """The docs' comparison picture: one held-out scene per row; input, each model's output, the truth (and, for an
    unpaired model, its B -> A mapping of the truth)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    comparison_grid(models, str(path), n=n)
    return path


def train_seconds(results: list[dict[str, Any]]) -> str:
    return ", ".join(f"{r['train_seconds']:.0f}" for r in results)
