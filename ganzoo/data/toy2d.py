"""2D Gaussian-mixture toy data with known modes: ``ring8`` and ``grid25``.

These are the synthetic benchmarks of VEEGAN (Srivastava et al., 2017) and PacGAN (Lin et al., 2018), with
PacGAN's parameters: the ring is 8 Gaussians evenly spaced on the unit circle with standard deviation 0.01, the
grid is 25 Gaussians at ``{-4, -2, 0, 2, 4}^2`` with standard deviation 0.05. The mode-counting metrics import the
centres and deviations from here, so data and evaluation cannot drift apart.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from ganzoo.data.base import BatchDataset
from ganzoo.data.procedural import check_split, counter_normal, counter_uniform, stream_key, wrap_indices

__all__ = [
    "GRID25_STD",
    "RING8_STD",
    "GaussianMixture2D",
    "grid25_modes",
    "ring8_modes",
]

RING8_STD = 0.01
GRID25_STD = 0.05


def ring8_modes() -> torch.Tensor:
    """The 8 ring centres ``(cos(2 pi i / 8), sin(2 pi i / 8))``, shape ``(8, 2)`` float32; row i is mode i."""
    angles = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
    return torch.stack([torch.cos(angles), torch.sin(angles)], dim=1).float()


def grid25_modes() -> torch.Tensor:
    """The 25 grid centres, shape ``(25, 2)`` float32; mode ``5 * i + j`` sits at ``(-4 + 2 i, -4 + 2 j)``."""
    axis = torch.arange(-4.0, 5.0, 2.0)
    xs, ys = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=1)


class GaussianMixture2D(BatchDataset):
    """An equal-weight mixture of isotropic 2D Gaussians, sampled on demand.

    Item ``k`` is ``{"image": float32 (2,) point, "label": int64 mode index}``. The mode is a function of
    ``k % len(self)`` and the offset from its centre a function of ``k``, so each virtual epoch draws fresh points.
    The field is called ``image`` so that 2D data shares the unconditional batch schema with images.

    :param name: stream name (keeps the ring's and the grid's random numbers independent).
    :param modes: ``(K, 2)`` centres.
    :param std: standard deviation of every component.
    :param split: ``train``, ``val`` or ``test``; their streams are disjoint.
    :param seed: selects the stream.
    :param length: points per epoch.
    """

    def __init__(
        self,
        name: str,
        modes: torch.Tensor,
        std: float,
        split: str = "train",
        seed: int = 0,
        length: int = 100_000,
    ) -> None:
        self.name = name
        self.modes = modes.to(torch.float64)
        self.std = float(std)
        self.split = check_split(split)
        self.seed = seed
        self.length = length
        self.num_classes = len(modes)
        self._mode_key = stream_key(f"{name}/mode", seed, split)
        self._noise_key = stream_key(f"{name}/noise", seed, split)

    def __len__(self) -> int:
        return self.length

    def __getitems__(self, indices: Sequence[int]) -> list[dict[str, torch.Tensor]]:
        raw, items = wrap_indices(indices, self.length)
        if not raw:
            return []
        labels = torch.from_numpy((counter_uniform(self._mode_key, items, 1)[:, 0] * self.num_classes).astype(np.int64))
        noise = torch.from_numpy(counter_normal(self._noise_key, raw, 2))
        # Sum in float64 so the tiny ring deviation (0.01) is not quantised before the cast.
        points = (self.modes[labels] + self.std * noise).float()
        return [{"image": points[i], "label": labels[i]} for i in range(len(raw))]
