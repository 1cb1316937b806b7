"""The built-in datasets: their factories and their registration.

A factory turns the user's data spec (``NAME[:ARG]``) and the variant's :class:`DataRequest` into a dataset,
rejecting with a one-line :class:`DataError` whatever it cannot serve. The task is not the factory's to check: each
dataset is registered with the tasks it serves, and ``ganzoo.train.data.build_dataset`` refuses any other.
"""

from __future__ import annotations

from collections.abc import Callable

from torch.utils.data import Dataset

from ganzoo.data.base import DataError, DataRequest, no_arg, path_arg
from ganzoo.data.files import ImageFolderDataset, MnistDataset, StackedMnistDataset
from ganzoo.data.procedural import ShapesDataset
from ganzoo.data.toy2d import GRID25_STD, RING8_STD, GaussianMixture2D, grid25_modes, ring8_modes

__all__ = [
    "folder_factory",
    "grid25_factory",
    "mnist_factory",
    "register_builtin",
    "ring8_factory",
    "shapes_factory",
    "stacked_mnist_factory",
]

_UNCONDITIONAL = ("unconditional",)


def shapes_factory(arg: str | None, request: DataRequest) -> Dataset:
    """``shapes``: procedural coloured shapes labelled by kind."""
    no_arg("shapes", arg)
    return ShapesDataset(request.image_size, request.channels, request.split, request.seed)


def ring8_factory(arg: str | None, request: DataRequest) -> Dataset:
    """``ring8``: 8 Gaussians on the unit circle (2D points)."""
    no_arg("ring8", arg)
    return GaussianMixture2D("ring8", ring8_modes(), RING8_STD, request.split, request.seed)


def grid25_factory(arg: str | None, request: DataRequest) -> Dataset:
    """``grid25``: 25 Gaussians on a 5 x 5 grid (2D points)."""
    no_arg("grid25", arg)
    return GaussianMixture2D("grid25", grid25_modes(), GRID25_STD, request.split, request.seed)


def mnist_factory(arg: str | None, request: DataRequest) -> Dataset:
    """``mnist:DIR``: MNIST IDX files in DIR."""
    return MnistDataset(path_arg("mnist", arg, "mnist_dir"), request.split, request.image_size, request.channels)


def stacked_mnist_factory(arg: str | None, request: DataRequest) -> Dataset:
    """``stacked-mnist:DIR``: three MNIST digits of DIR stacked as RGB (1,000 classes)."""
    if request.channels != 3:
        raise DataError(f"stacked-mnist images have 3 channels (one digit each); the model asks for {request.channels}")
    root = path_arg("stacked-mnist", arg, "mnist_dir")
    return StackedMnistDataset(root, request.split, request.image_size, request.seed)


def folder_factory(arg: str | None, request: DataRequest) -> Dataset:
    """``folder:DIR``: every image under DIR; first-level subfolders are classes when all images are in one."""
    return ImageFolderDataset(path_arg("folder", arg, "images"), request.image_size, request.channels)


def register_builtin(register: Callable[..., None]) -> None:
    """Register the built-in datasets through a ``ganzoo_register_datasets`` ``register`` callback."""
    register(
        "shapes",
        shapes_factory,
        tasks=_UNCONDITIONAL,
        help="procedural coloured shapes (6 classes), any size >= 8, 1 or 3 channels; no download",
    )
    register(
        "ring8",
        ring8_factory,
        tasks=_UNCONDITIONAL,
        help="2D points: 8 Gaussians on the unit circle, std 0.01 (PacGAN/VEEGAN); label = mode",
    )
    register(
        "grid25",
        grid25_factory,
        tasks=_UNCONDITIONAL,
        help="2D points: 25 Gaussians at {-4,-2,0,2,4}^2, std 0.05 (PacGAN/VEEGAN); label = mode",
    )
    register("mnist", mnist_factory, tasks=_UNCONDITIONAL, help="mnist:DIR, MNIST IDX files (gzipped or not) in DIR")
    register(
        "stacked-mnist",
        stacked_mnist_factory,
        tasks=_UNCONDITIONAL,
        help="stacked-mnist:DIR, three MNIST digits of DIR as R, G, B (1,000 classes; VEEGAN/PacGAN mode counting)",
    )
    register(
        "folder",
        folder_factory,
        tasks=_UNCONDITIONAL,
        help="folder:DIR, images under DIR (png/jpg/bmp/webp); first-level subfolders are classes",
    )
