"""Mode-collapse metrics for data with known modes: 2-D Gaussian mixtures and Stacked MNIST.

Both follow VEEGAN (Srivastava et al. 2017) and PacGAN (Lin et al. 2018). Their "KL" / "reverse KL" is
``KL(p_gen || uniform) = sum_i p_i log(p_i * K)``, with ``p`` the generated samples' histogram over the K modes
and ``0 log 0 = 0``: the divergence of the model from the data, which is what "reverse" means in the GAN
literature (the forward direction, KL(data || model), is what maximum likelihood minimizes). It is the only finite
direction once a mode is missed, and PacGAN's released code computes exactly ``sum p log(p / q)`` with q uniform
(stacked_MNIST_experiments/*/model.py). A sampler covering all modes evenly scores 0, one stuck in a single mode
scores log K.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = [
    "ring_centres",
    "grid_centres",
    "mode_stats",
    "class_histogram_stats",
    "stacked_classes",
]


def ring_centres(num_modes: int = 8, radius: float = 1.0) -> Tensor:
    """Centres of the ring mixture: ``num_modes`` points evenly on a circle (PacGAN: 8 on the unit circle)."""
    angles = torch.arange(num_modes, dtype=torch.float64) * (2 * math.pi / num_modes)
    return torch.stack([radius * torch.cos(angles), radius * torch.sin(angles)], dim=1)


def grid_centres(side: int = 5, spacing: float = 2.0) -> Tensor:
    """Centres of the grid mixture: a ``side x side`` lattice centred on 0 (PacGAN: {-4, -2, 0, 2, 4}^2)."""
    ticks = (torch.arange(side, dtype=torch.float64) - (side - 1) / 2) * spacing
    gx, gy = torch.meshgrid(ticks, ticks, indexing="ij")
    return torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)


def _kl_to_uniform(counts: Tensor) -> float:
    total = counts.sum()
    if total == 0:
        return math.nan
    p = counts.to(torch.float64) / total
    nz = p > 0
    return float((p[nz] * torch.log(p[nz] * counts.numel())).sum())


@torch.no_grad()
def mode_stats(samples: Tensor, centres: Tensor, std: float, threshold: float = 3.0) -> dict[str, float | int]:
    """The 2-D mixture protocol (PROTOCOLS.md section 1).

    A sample is high quality when it lies within ``threshold`` standard deviations of its nearest centre (strictly,
    as PacGAN's code compares). A mode is captured when it is the nearest centre of at least one high-quality
    sample.

    Returns:
        ``modes`` (int), ``high_quality`` (fraction of all samples in [0, 1]) and ``reverse_kl``, the KL of the
        high-quality samples' mode histogram from uniform (see the module docstring); NaN when no sample is high
        quality, since the histogram is then undefined.
    """
    x = samples.reshape(samples.shape[0], -1).to(torch.float64)
    c = centres.to(device=x.device, dtype=torch.float64)
    if x.shape[1] != c.shape[1]:
        raise ValueError(f"samples have dimension {x.shape[1]}, centres {c.shape[1]}")
    dist = torch.cdist(x, c)
    nearest_dist, nearest = dist.min(dim=1)
    good = nearest_dist < threshold * std
    counts = torch.bincount(nearest[good], minlength=c.shape[0])
    return {
        "modes": int((counts > 0).sum()),
        "high_quality": float(good.double().mean()) if x.shape[0] else math.nan,
        "reverse_kl": _kl_to_uniform(counts),
    }


def stacked_classes(digit_preds: Tensor, base: int = 10) -> Tensor:
    """Combine per-channel digit predictions (N, 3) into one Stacked MNIST class in [0, base^3): R*100 + G*10 + B."""
    if digit_preds.ndim != 2:
        raise ValueError(f"expected (N, channels) predictions, got shape {tuple(digit_preds.shape)}")
    weights = base ** torch.arange(digit_preds.shape[1] - 1, -1, -1, device=digit_preds.device)
    return (digit_preds.long() * weights).sum(dim=1)


@torch.no_grad()
def class_histogram_stats(pred_classes: Tensor, num_classes: int) -> dict[str, float | int]:
    """Stacked MNIST mode counting (VEEGAN Table 2, PacGAN Tables 2-3).

    Args:
        pred_classes: (N,) integer class of each generated sample (see :func:`stacked_classes`).
        num_classes: number of modes, 1000 for Stacked MNIST.

    Returns:
        ``modes``: classes hit by at least one sample; ``kl``: KL(histogram || uniform), see the module docstring.
    """
    pred = pred_classes.reshape(-1).long()
    if pred.numel() and (int(pred.min()) < 0 or int(pred.max()) >= num_classes):
        raise ValueError(f"class ids must lie in [0, {num_classes}), got [{int(pred.min())}, {int(pred.max())}]")
    counts = torch.bincount(pred, minlength=num_classes)
    return {"modes": int((counts > 0).sum()), "kl": _kl_to_uniform(counts)}
