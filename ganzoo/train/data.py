"""Data plumbing of the trainer: data specs -> datasets, a resumable infinite sampler, device transfer."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import Dataset, Sampler, default_collate

from ..data.base import DataError, DataRequest, get_items
from ..variant import GANVariant


def parse_data_spec(spec: str) -> tuple[str, str | None]:
    """``"mnist:/data/mnist"`` -> ``("mnist", "/data/mnist")``; ``"shapes"`` -> ``("shapes", None)``."""
    if not isinstance(spec, str) or not spec.strip():
        raise DataError(f"data spec {spec!r} is empty; use NAME or NAME:ARG (see `ganzoo data list`)")
    name, sep, arg = spec.strip().partition(":")
    return name.lower(), (arg if sep else None)


def build_dataset(spec: str, variant: GANVariant, split: str = "train", seed: int = 0) -> Dataset:
    """The dataset a data spec names, built for ``variant``'s task, image size and channels."""
    from ..registry import datasets, get

    name, arg = parse_data_spec(spec)
    entry = get("dataset", name)
    task = str(variant.task)
    if entry.tasks and task not in entry.tasks:
        fitting = sorted(n for n, e in datasets().items() if not e.tasks or task in e.tasks)
        raise DataError(
            f"dataset {name!r} yields {'/'.join(entry.tasks)} data, but {variant.name!r} is a {task} variant; "
            f"datasets for {task}: {', '.join(fitting)}"
        )
    request = DataRequest(
        task=task,
        split=split,
        image_size=variant.image_size,
        channels=variant.channels,
        seed=seed,
        options=variant.data_options(),
    )
    ds = entry.obj(arg, request)
    if len(ds) == 0:
        raise DataError(f"dataset {spec!r} is empty")
    return ds


class InfiniteSampler(Sampler[int]):
    """Endless reshuffled epochs that yield *virtual* indices ``epoch * n + i`` (datasets wrap them and seed their
    augmentation from them). ``start`` skips the samples already consumed, so resume continues the same stream."""

    def __init__(self, n: int, seed: int = 0, start: int = 0, shuffle: bool = True):
        self.n, self.seed, self.start, self.shuffle = n, seed, start, shuffle

    def _perm(self, epoch: int) -> torch.Tensor:
        if not self.shuffle:
            return torch.arange(self.n)
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.n, generator=g)

    def __iter__(self) -> Iterator[int]:
        epoch, offset = divmod(self.start, self.n)
        while True:
            perm = self._perm(epoch)
            base = epoch * self.n
            for i in range(offset, self.n):
                yield base + int(perm[i])
            epoch, offset = epoch + 1, 0

    def __len__(self) -> int:  # an epoch; the sampler itself never ends
        return self.n


def first_items(ds: Dataset, n: int) -> dict[str, Any]:
    """A batch of the first ``n`` items (fixed inputs for sample grids)."""
    n = min(n, len(ds))
    return default_collate(get_items(ds, range(n)))


def to_device(batch: Any, device: torch.device, channels_last: bool = False) -> Any:
    """Move a batch to ``device``; uint8 images become ``[-1, 1]`` floats there (4x less host-to-device traffic
    than sending floats, and the normalization runs on the accelerator)."""
    if torch.is_tensor(batch):
        t = batch.to(device, non_blocking=True)
        if t.dtype == torch.uint8:
            t = t.float().div_(127.5).sub_(1.0)
        if channels_last and t.dim() == 4:
            t = t.contiguous(memory_format=torch.channels_last)
        return t
    if isinstance(batch, dict):
        return {k: to_device(v, device, channels_last) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)) and batch and torch.is_tensor(batch[0]):
        return type(batch)(to_device(v, device, channels_last) for v in batch)
    return batch
