"""The dataset contract shared by every task.

A ganzoo dataset is a map-style ``torch.utils.data.Dataset`` with two extra rules:

* ``dataset[k]`` accepts *any* non-negative integer ``k``. It returns item ``k % len(dataset)`` and seeds any
  random augmentation from ``k`` itself, so the trainer's sampler can hand out "virtual" indices
  ``epoch * len + i`` and every epoch sees fresh, reproducible augmentation. This is what makes resume exact.
* Items are dicts of tensors following the batch schema of the dataset's task (see ``ganzoo.variant.Task``).
  Images are ``uint8`` tensors ``C x H x W`` in ``0..255``; the trainer moves them to the device and maps them to
  ``[-1, 1]`` floats there, so host-side work and host-to-device traffic stay small.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import GanzooError


class DataError(GanzooError, ValueError):
    """A user-facing data problem (missing path, corrupt file, wrong spec). The CLI prints it as one line."""


@dataclass
class DataRequest:
    """What a variant needs from a dataset; passed to every dataset factory.

    :param task: the task name (``"unconditional"``, ``"paired"`` ...), one of ``ganzoo.variant.Task``.
    :param split: ``"train"``, ``"val"`` or ``"test"``.
    :param image_size: side length in pixels the variant trains at (0 for non-image data such as 2D points).
    :param channels: image channels the variant expects (1 or 3; 0 for non-image data).
    :param seed: seed of procedural generation and augmentation.
    :param options: task-specific extras (e.g. ``scale`` for super-resolution, ``load_size`` for jitter).
    """

    task: str
    split: str = "train"
    image_size: int = 64
    channels: int = 3
    seed: int = 0
    options: dict[str, Any] = field(default_factory=dict)
