"""Sharpness of image-to-image outputs against their ground truth: mean gradient magnitude and the spectral energy
above half the Nyquist frequency, each as a ratio of the outputs' mean to the references' mean (1: as sharp as the
truth; a blurred output scores below 1, added noise or over-sharpening above).

PSNR and L1 reward the conditional mean, which is blurred; these two ratios show what they hide. Both work on the
0..255 scale (outputs in ``[-1, 1]`` are rounded to 8 bits first, as for PSNR), per image, over all channels.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = [
    "SHARPNESS_METRICS",
    "gradient_magnitude",
    "high_frequency_energy",
    "sharpness_ratio",
    "sharpness_rows",
]

SHARPNESS_METRICS = ("grad-ratio", "hf-ratio")
"""The metric names of the two ratios, as ``ganzoo eval --metrics`` and the metric registry know them."""

# Radial frequency (cycles per pixel) above which spectral energy counts as high frequency: half the Nyquist 0.5.
_HF_CUTOFF = 0.25


def _as_float(images: Tensor) -> Tensor:
    if images.ndim == 3:
        images = images[None]
    if images.ndim != 4:
        raise ValueError(f"images must be (C, H, W) or (B, C, H, W), got shape {tuple(images.shape)}")
    return images.float()


def gradient_magnitude(images: Tensor) -> Tensor:
    """Mean gradient magnitude of each image, from forward differences on the 0..255 scale.

    :param images: ``(B, C, H, W)`` or ``(C, H, W)`` images on the 0..255 scale (uint8 or float), at least 2x2.
    :returns: ``(B,)`` means over channels and the ``(H - 1) x (W - 1)`` pixels with both differences.
    """
    x = _as_float(images)
    gx = x[..., :-1, 1:] - x[..., :-1, :-1]
    gy = x[..., 1:, :-1] - x[..., :-1, :-1]
    return (gx.square() + gy.square()).sqrt().flatten(1).mean(1)


def high_frequency_energy(images: Tensor) -> Tensor:
    """Spectral power above half the Nyquist frequency (radially) of each mean-removed image, per pixel and channel.

    :param images: ``(B, C, H, W)`` or ``(C, H, W)`` images on the 0..255 scale (uint8 or float).
    :returns: ``(B,)`` energies: the power of the unnormalised 2-D DFT summed over the high band, divided by
        ``C * H * W``.
    """
    x = _as_float(images)
    x = x - x.mean(dim=(-2, -1), keepdim=True)
    power = torch.fft.fft2(x).abs().square()
    fy = torch.fft.fftfreq(x.shape[-2], device=x.device)[:, None]
    fx = torch.fft.fftfreq(x.shape[-1], device=x.device)[None, :]
    high = (fy.square() + fx.square()).sqrt() > _HF_CUTOFF
    return (power * high).flatten(1).sum(1) / x[0].numel()


def sharpness_rows(images: Tensor) -> dict[str, Tensor]:
    """Both per-image sharpness measures of a batch, keyed by the metric they make a ratio of.

    :param images: ``(B, C, H, W)`` images on the 0..255 scale.
    :returns: ``{"grad-ratio": gradient_magnitude, "hf-ratio": high_frequency_energy}``, each ``(B,)``.
    """
    return {"grad-ratio": gradient_magnitude(images), "hf-ratio": high_frequency_energy(images)}


def sharpness_ratio(pred: Sequence[Tensor] | Tensor, ref: Sequence[Tensor] | Tensor) -> float:
    """The ratio of the means of per-image values: ``mean(pred) / mean(ref)`` (ratio of means, not mean of ratios,
    so one nearly flat reference cannot dominate).

    :param pred: per-image values of the outputs (one tensor, or batches of them).
    :param ref: per-image values of the references, same count.
    :returns: the ratio; ``nan`` when the references have no energy at all.
    """
    p = pred if isinstance(pred, Tensor) else torch.cat([t.reshape(-1) for t in pred])
    r = ref if isinstance(ref, Tensor) else torch.cat([t.reshape(-1) for t in ref])
    if p.numel() != r.numel():
        raise ValueError(f"{p.numel()} output values against {r.numel()} reference values")
    denominator = float(r.double().mean())
    return float(p.double().mean()) / denominator if denominator > 0 else float("nan")
