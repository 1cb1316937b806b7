"""The dataset contract shared by every task.

A ganzoo dataset is a map-style ``torch.utils.data.Dataset`` with two extra rules:

* ``dataset[k]`` accepts *any* non-negative integer ``k`` and returns the same item for the same ``k`` every time:
  any randomness is seeded from ``k`` (and the request's seed), never drawn from a global generator, so the
  trainer's sampler can hand out "virtual" indices ``epoch * len + i``, every epoch sees fresh, reproducible
  augmentation, and resume is exact. Stored data returns item ``k % len(dataset)`` (augmented from ``k`` on the
  ``train`` split only); procedural data may render item ``k`` itself, an endless stream whose ``len`` is the
  epoch length and the size evaluation draws from, as the built-in ones do. ``len`` is positive and fixed.
  :func:`ganzoo.testing.check_dataset` (run by the conformance kit) checks these rules.
* Items are dicts of tensors following the batch schema of the dataset's task (see ``ganzoo.variant.Task``).
  Images are ``uint8`` tensors ``C x H x W`` in ``0..255``; the trainer moves them to the device and maps them to
  ``[-1, 1]`` floats there, so host-side work and host-to-device traffic stay small.

A dataset that can make a whole batch at once (vectorised rendering, one gather from a tensor) subclasses
:class:`BatchDataset` and implements ``__getitems__``. Code that reads items itself calls :func:`get_items`, which
takes that path where a dataset has it. A factory parses its spec argument with :func:`no_arg` or :func:`path_arg`;
it does not check ``request.task``: the tasks a dataset is registered with are checked once, where a data spec is
built for a variant (``ganzoo.train.data.build_dataset``), with one error that names the dataset, the task asked for
and the tasks the dataset serves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from ..errors import GanzooError


class DataError(GanzooError, ValueError):
    """A user-facing data problem (missing path, corrupt file, wrong spec). The CLI prints it as one line."""


@dataclass
class DataRequest:
    """What a variant needs from a dataset; passed to every dataset factory.

    :param task: the task name (``"unconditional"``, ``"paired"`` ...), one of :class:`ganzoo.Task`; the items
        must follow its batch schema.
    :param split: ``"train"`` (what the trainer and :meth:`ganzoo.GANVariant.prepare_data` get; the only split with
        random augmentation such as jitter and flips), ``"val"`` (held-out data a variant may calibrate on in
        :meth:`ganzoo.GANVariant.on_train_end`) or ``"test"`` (what ``ganzoo eval`` scores against). Procedural
        datasets draw the three splits from disjoint random streams; a file format maps them onto its files as its
        documentation says. A dataset raises :class:`DataError` for any other value.
    :param image_size: side length in pixels the variant trains at (0 for non-image data such as 2D points).
    :param channels: image channels the variant expects (1 or 3; 0 for non-image data).
    :param seed: seed of procedural generation and augmentation.
    :param options: task-specific extras from :meth:`ganzoo.GANVariant.data_options`, plain values only (e.g.
        ``scale`` for super-resolution, ``load_size`` for jitter).
    """

    task: str
    split: str = "train"
    image_size: int = 64
    channels: int = 3
    seed: int = 0
    options: dict[str, Any] = field(default_factory=dict)


class BatchDataset(Dataset):
    """Base of the datasets that make a whole batch at once (vectorised rendering, one tensor gather): a subclass
    implements ``__getitems__``, which the ``DataLoader`` calls with a batch's indices, and ``dataset[k]`` is the
    batch ``[k]``, so one item and a batch holding it are the same by construction."""

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.__getitems__([index])[0]

    def __getitems__(self, indices: Sequence[int]) -> list[dict[str, Any]]:
        """The items of the given (virtual) indices, in order.

        :param indices: non-negative item indices (each taken modulo the length).
        :returns: one item dict per index.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement __getitems__")


def get_items(dataset: Dataset, indices: Sequence[int]) -> list[dict[str, Any]]:
    """The items of ``indices``, in one ``__getitems__`` call when the dataset has one (as the ``DataLoader``
    does), else item by item.

    :param dataset: any map-style dataset.
    :param indices: the item indices.
    :returns: one item per index, in order.
    """
    getitems = getattr(dataset, "__getitems__", None)
    if getitems is not None:
        return getitems(list(indices))
    return [dataset[i] for i in indices]


def no_arg(name: str, arg: str | None) -> None:
    """Reject an argument given to a dataset that takes none (``shapes:foo``).

    :param name: the dataset's registered name.
    :param arg: the text after ``NAME:`` in the data spec, or ``None``.
    :raises DataError: when ``arg`` is not empty.
    """
    if arg:
        raise DataError(f"dataset {name!r} takes no argument, got {name}:{arg}; use plain {name!r}")


def path_arg(name: str, arg: str | None, what: str = "dataset") -> Path:
    """The path a dataset's spec names (``NAME:PATH``), with ``~`` expanded.

    :param name: the dataset's registered name.
    :param arg: the text after ``NAME:`` in the data spec, or ``None``.
    :param what: what the path holds, for the error message (``NAME:/path/to/WHAT``).
    :returns: the path (whether it exists is for the dataset to check).
    :raises DataError: when no path was given.
    """
    if not arg:
        raise DataError(f"dataset {name!r} needs a path: {name}:/path/to/{what}")
    return Path(arg).expanduser()
