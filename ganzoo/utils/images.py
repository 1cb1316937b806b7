"""Image helpers: uint8 <-> ``[-1, 1]`` tensors, tensors <-> PNG files, sample grids, 2D point scatters."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from PIL import Image
from torch import Tensor


def to_uint8(images: Tensor) -> Tensor:
    """``[-1, 1]`` floats (B x C x H x W or C x H x W) -> uint8 ``0..255``."""
    return images.detach().float().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8).cpu()


def as_pm1(x: Tensor) -> Tensor:
    """Images as ``[-1, 1]`` floats, the range the networks work in.

    :param x: uint8 images in ``0..255`` (converted), or floats taken as already in ``[-1, 1]``; other integer
        dtypes become floats unscaled.
    :returns: a float tensor of the same shape (``x`` itself when it is already floating point).
    """
    if x.dtype == torch.uint8:
        return x.float().div(127.5).sub(1.0)
    return x.float() if not x.is_floating_point() else x


def side_by_side(*images: Tensor) -> Tensor:
    """One picture per item, the given batches placed next to each other left to right (e.g. input | output |
    target), for sample grids.

    :param images: batches ``B x C x H x W_i`` in ``[-1, 1]`` of equal ``B``, ``C`` and ``H``.
    :returns: ``B x C x H x sum(W_i)`` float images, clamped to ``[-1, 1]``.
    """
    return torch.cat([x.float().clamp(-1, 1) for x in images], dim=-1)


def to_pil(image: Tensor) -> Image.Image:
    """One ``C x H x W`` image in ``[-1, 1]`` -> a PIL image (L for one channel, RGB for three)."""
    arr = to_uint8(image).permute(1, 2, 0).numpy()
    return Image.fromarray(arr[..., 0] if arr.shape[2] == 1 else arr, mode="L" if arr.shape[2] == 1 else "RGB")


def make_grid(images: Tensor, nrow: int | None = None, padding: int = 2) -> Tensor:
    from torchvision.utils import make_grid as tv_grid

    n = images.shape[0]
    nrow = nrow or max(1, int(math.ceil(math.sqrt(n))))
    return tv_grid(images.detach().float().cpu(), nrow=nrow, padding=padding, pad_value=1.0)


def save_grid(images: Tensor, path: str | Path, nrow: int | None = None) -> Path:
    """Save a batch of ``[-1, 1]`` images as one PNG grid (parents created; written atomically)."""
    import io

    from .files import atomic_write_bytes

    grid = make_grid(images, nrow)
    buf = io.BytesIO()
    to_pil(grid).save(buf, format="PNG")
    path = Path(path)
    atomic_write_bytes(path, buf.getvalue())
    return path


def save_image(image: Tensor, path: str | Path) -> Path:
    import io

    from .files import atomic_write_bytes

    buf = io.BytesIO()
    to_pil(image).save(buf, format="PNG")
    atomic_write_bytes(Path(path), buf.getvalue())
    return Path(path)


def scatter_image(points: Tensor, limit: float, size: int = 256, reference: Tensor | None = None) -> Tensor:
    """Render 2D points into a ``3 x size x size`` image in ``[-1, 1]`` (white background, samples in blue,
    optional reference points such as mode centres in red), so 2D runs get a sample "grid" like image runs."""
    img = torch.ones(3, size, size)

    def plot(pts: Tensor, colour: tuple[float, float, float], radius: int) -> None:
        pts = pts.detach().float().cpu()
        ij = ((pts / limit + 1) / 2 * (size - 1)).round().long()
        keep = (ij >= 0).all(1) & (ij < size).all(1)
        ij = ij[keep]
        for dy in range(-radius, radius + 1):
            for dx in range(-radius, radius + 1):
                x = (ij[:, 0] + dx).clamp(0, size - 1)
                y = (size - 1 - ij[:, 1] + dy).clamp(0, size - 1)
                for c in range(3):
                    img[c, y, x] = colour[c]

    plot(points, (-1.0, -0.4, 0.8), 0)
    if reference is not None:
        plot(reference, (0.9, -1.0, -1.0), 1)
    return img
