"""Super-resolution data: ``{"lr": uint8 C x H/s x W/s, "hr": uint8 C x H x W}`` items.

* ``sr-folder:DIR``: a folder of high-resolution images. Each item is a random HR crop (position seeded from the
  virtual index ``k``) and its low-resolution input, made on the fly by PIL's bicubic downscaling, the way the SR
  test sets (Set5, Set14 ``LR_x4``) were made.
* ``sr-pairs:DIR``: given pairs, ``DIR/HR/NAME`` and ``DIR/LR_x{scale}/NAME``, for evaluation (whole images) or
  for training on aligned random crops.
* ``shapes-sr``: procedural scenes (the ``shapes`` renderer plus fine gratings, so bicubic upsampling visibly
  blurs them), needing no download.

The variant says what it needs in ``request.options``: ``scale`` (2, 4, 8 ...), ``crop`` (the HR crop side, or
``None``/0 for whole images, ``sr-pairs`` only) and ``augment`` (training crops only: each crop in one of the 8
orientations of the square, its flips and quarter turns, chosen from the virtual index like the crop's position).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from ganzoo.data.base import BatchDataset, DataError, DataRequest, no_arg, path_arg
from ganzoo.data.files import check_channels, image_to_tensor, list_images, open_image
from ganzoo.data.procedural import ShapesDataset, check_split, counter_uniform, stream_key, wrap_indices

__all__ = [
    "SRFolderDataset",
    "SRPairsDataset",
    "ShapesSRDataset",
    "bicubic_downscale",
    "register_datasets",
    "sr_options",
]

TASKS = ("super_resolution",)


def bicubic_downscale(im: Image.Image, scale: int) -> Image.Image:
    """``im`` shrunk by ``scale`` with PIL's BICUBIC filter (antialiased: the kernel is widened by ``scale``), as the
    LR inputs of the SR benchmarks were made. The size must divide by ``scale`` (callers mod-crop first)."""
    w, h = im.size
    if w % scale or h % scale:
        raise DataError(f"bicubic_downscale: size {w}x{h} is not divisible by the scale {scale}")
    return im.resize((w // scale, h // scale), Image.Resampling.BICUBIC)


def sr_options(request: DataRequest) -> tuple[int, int]:
    """``(scale, crop)`` from the request; crop 0 means whole images."""
    opts = request.options or {}
    scale = opts.get("scale", 4)
    crop = opts.get("crop", request.image_size)
    crop = 0 if crop is None else crop
    if not isinstance(scale, int) or scale < 1:
        raise DataError(f"super-resolution scale {scale!r} is not valid; use a positive integer such as 2, 4 or 8")
    if not isinstance(crop, int) or crop < 0 or crop % scale:
        raise DataError(f"HR crop {crop!r} is not valid; use a positive multiple of the scale {scale}")
    return scale, crop


def _crop_offsets(key: int, index: int, w: int, h: int, crop: int, step: int = 1) -> tuple[int, int]:
    """Top-left corner of a ``crop`` square inside ``w x h``, uniform over multiples of ``step``, from ``index``."""
    u = counter_uniform(key, [index], 2)[0]
    nx, ny = (w - crop) // step + 1, (h - crop) // step + 1
    return int(u[0] * nx) * step, int(u[1] * ny) * step


#: The 8 orientations of a square (the dihedral group): identity, 3 quarter turns, 2 flips and 2 transposes.
DIHEDRAL: tuple[Image.Transpose | None, ...] = (
    None,
    Image.Transpose.ROTATE_90,
    Image.Transpose.ROTATE_180,
    Image.Transpose.ROTATE_270,
    Image.Transpose.FLIP_LEFT_RIGHT,
    Image.Transpose.FLIP_TOP_BOTTOM,
    Image.Transpose.TRANSPOSE,
    Image.Transpose.TRANSVERSE,
)


def _orient(key: int, index: int, *images: Image.Image) -> tuple[Image.Image, ...]:
    """``images`` in the same one of the 8 :data:`DIHEDRAL` orientations, drawn from ``index``'s stream."""
    op = DIHEDRAL[int(counter_uniform(key, [index], 1)[0, 0] * len(DIHEDRAL))]
    return images if op is None else tuple(im.transpose(op) for im in images)


def sr_augment(request: DataRequest) -> bool:
    """Whether the request asks for oriented training crops (``options["augment"]``; never for other splits)."""
    augment = (request.options or {}).get("augment", False)
    if not isinstance(augment, bool):
        raise DataError(f"super-resolution augment {augment!r} is not valid; use true or false")
    return augment and request.split == "train"


def _pair_item(hr: Image.Image, lr: Image.Image) -> dict[str, torch.Tensor]:
    return {"lr": image_to_tensor(lr), "hr": image_to_tensor(hr)}


class SRFolderDataset(Dataset):
    """Random HR crops of the images under ``root`` and their bicubic-downscaled LR inputs.

    Item ``k`` comes from file ``k % len(self)``; the crop position is a function of ``k`` itself, so each virtual
    epoch sees new crops, reproducibly. Decoded images are kept in memory (``cache``): the training sets of SR are
    small (Urban100: 100 images, 69 MB decoded) and decoding dominates a small model's step otherwise.

    :param root: folder of HR images (searched recursively).
    :param scale: downscaling factor.
    :param crop: HR crop side, a multiple of ``scale``.
    :param channels: 3 (RGB) or 1 (grayscale).
    :param augment: turn each HR crop to one of its 8 orientations (:data:`DIHEDRAL`) before downscaling.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        scale: int = 4,
        crop: int = 96,
        channels: int = 3,
        seed: int = 0,
        split: str = "train",
        cache: bool = True,
        augment: bool = False,
    ) -> None:
        if crop < scale or crop % scale:
            raise DataError(f"sr-folder: HR crop {crop} must be a positive multiple of the scale {scale}")
        self.root = Path(root)
        self.scale, self.crop, self.channels = scale, crop, check_channels(channels, "sr-folder")
        self.files = list_images(self.root)
        self._key = stream_key("sr-folder/crop", seed, check_split(split))
        self._orient_key = stream_key("sr-folder/orient", seed, split) if augment else None
        self._cache: dict[int, Image.Image] | None = {} if cache else None

    def __len__(self) -> int:
        return len(self.files)

    def _image(self, item: int) -> Image.Image:
        if self._cache is not None and item in self._cache:
            return self._cache[item]
        im = open_image(self.files[item], self.channels)
        if min(im.size) < self.crop:
            raise DataError(
                f"image {self.files[item]} is {im.size[0]}x{im.size[1]}, smaller than the {self.crop}x{self.crop} "
                "HR crop; remove it or train with a smaller image_size"
            )
        if self._cache is not None:
            self._cache[item] = im
        return im

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        (k,), (item,) = wrap_indices([index], len(self))
        im = self._image(item)
        x, y = _crop_offsets(self._key, k, im.size[0], im.size[1], self.crop)
        hr = im.crop((x, y, x + self.crop, y + self.crop))
        if self._orient_key is not None:
            (hr,) = _orient(self._orient_key, k, hr)
        return _pair_item(hr, bicubic_downscale(hr, self.scale))


class SRPairsDataset(Dataset):
    """Given HR/LR pairs: ``root/HR/NAME`` with ``root/LR_x{scale}/NAME`` (the layout of Set5/Set14 here).

    With ``crop`` 0 an item is the whole pair (sizes differ between images: batch size 1); otherwise an aligned
    random crop (HR corner on multiples of ``scale``) seeded from the virtual index, turned to one of the 8
    orientations of :data:`DIHEDRAL` (the same for both) when ``augment`` is set.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        scale: int = 4,
        crop: int = 0,
        channels: int = 3,
        seed: int = 0,
        augment: bool = False,
    ) -> None:
        self.root = Path(root)
        self.scale, self.crop = scale, crop
        self.channels = check_channels(channels, "sr-pairs") if channels else 0
        hr_dir, lr_dir = self.root / "HR", self.root / f"LR_x{scale}"
        for d in (hr_dir, lr_dir):
            if not d.is_dir():
                have = sorted(p.name for p in self.root.iterdir() if p.is_dir()) if self.root.is_dir() else []
                raise DataError(
                    f"sr-pairs: folder {d} not found; {self.root} must hold HR/ and LR_x{scale}/ "
                    f"(it holds: {', '.join(have) or 'nothing'})"
                )
        self.hr_files = list_images(hr_dir)
        self.lr_files = []
        for f in self.hr_files:
            lr = lr_dir / f.relative_to(hr_dir)
            if not lr.is_file():
                raise DataError(f"sr-pairs: {f} has no LR partner {lr}")
            self.lr_files.append(lr)
        self._key = stream_key("sr-pairs/crop", seed)
        self._orient_key = stream_key("sr-pairs/orient", seed) if augment and crop else None

    def __len__(self) -> int:
        return len(self.hr_files)

    def names(self) -> list[str]:
        return [f.name for f in self.hr_files]

    def load_pair(self, item: int, channels: int | None = None) -> tuple[Image.Image, Image.Image]:
        """The PIL images ``(hr, lr)`` of pair ``item``; ``channels`` None/0 keeps each file's own (L or RGB)."""
        ch = channels if channels is not None else self.channels
        hr_path, lr_path = self.hr_files[item], self.lr_files[item]
        if ch:
            hr, lr = open_image(hr_path, ch), open_image(lr_path, ch)
        else:
            hr = open_image(hr_path, 1 if _is_gray(hr_path) else 3)
            lr = open_image(lr_path, 1 if hr.mode == "L" else 3)
        s = self.scale
        if hr.size != (lr.size[0] * s, lr.size[1] * s):
            raise DataError(f"sr-pairs: {hr_path} is {hr.size}, not {s} x its LR {lr_path} {lr.size}")
        return hr, lr

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        (k,), (item,) = wrap_indices([index], len(self))
        hr, lr = self.load_pair(item, self.channels or 3)
        if self.crop:
            if min(hr.size) < self.crop:
                raise DataError(f"image {self.hr_files[item]} is {hr.size[0]}x{hr.size[1]}, smaller than the crop")
            x, y = _crop_offsets(self._key, k, hr.size[0], hr.size[1], self.crop, step=self.scale)
            s, c = self.scale, self.crop
            hr = hr.crop((x, y, x + c, y + c))
            lr = lr.crop((x // s, y // s, (x + c) // s, (y + c) // s))
            if self._orient_key is not None:
                hr, lr = _orient(self._orient_key, k, hr, lr)
            return _pair_item(hr, lr)
        # Whole images are what evaluation scores: say which files are grayscale, which the SR protocol scores as
        # their own luma (their items carry them as three equal channels).
        return {**_pair_item(hr, lr), "gray": torch.tensor(_is_gray(self.hr_files[item]))}


def _is_gray(path: Path) -> bool:
    try:
        with Image.open(path) as im:
            return im.mode in ("L", "LA", "1", "I", "I;16", "I;16B", "I;16L", "I;16N", "F")
    except (OSError, SyntaxError, ValueError) as e:
        raise DataError(f"cannot read image {path}: {e}") from None


class ShapesSRDataset(BatchDataset):
    """Procedural HR scenes with fine detail: a ``shapes`` image overlaid with a sinusoidal grating (period 2.5-8 HR
    pixels, random orientation and contrast) that bicubic upsampling cannot recover, and its bicubic LR input.

    Item ``k`` is a pure function of ``(seed, split, k)``.
    """

    EPOCH_SIZES = {"train": 50_000, "val": 1_000, "test": 1_000}

    def __init__(self, scale: int = 4, crop: int = 96, channels: int = 3, split: str = "train", seed: int = 0) -> None:
        if crop < max(8, scale) or crop % scale:
            raise DataError(f"shapes-sr: HR crop {crop} must be a multiple of the scale {scale} and >= 8")
        self.scale, self.crop, self.channels = scale, crop, check_channels(channels, "shapes-sr")
        self.split = check_split(split)
        self._shapes = ShapesDataset(crop, channels, split, seed)
        self._key = stream_key("shapes-sr/texture", seed, split)
        axis = torch.arange(crop, dtype=torch.float64)
        self._yy, self._xx = torch.meshgrid(axis, axis, indexing="ij")

    def __len__(self) -> int:
        return self.EPOCH_SIZES[self.split]

    def render_hr(self, indices: Sequence[int]) -> torch.Tensor:
        """uint8 ``(N, C, crop, crop)`` HR scenes of the given virtual indices."""
        raw, _ = wrap_indices(indices, len(self))
        base = self._shapes.__getitems__(raw)
        u = counter_uniform(self._key, raw, 5)
        out = []
        for item, p in zip(base, u):
            img = item["image"].double()
            period = 2.5 + 5.5 * p[0]
            angle = math.pi * p[1]
            phase = 2 * math.pi * p[2]
            amp = 20 + 40 * p[3]
            t = (self._xx * math.cos(angle) + self._yy * math.sin(angle)) * (2 * math.pi / period) + phase
            grating = amp * torch.sin(t)
            # The grating covers a band of the image only, so every scene also has flat areas and sharp edges.
            lo = p[4] * 0.5 * self.crop
            band = ((self._xx >= lo) & (self._xx < lo + 0.5 * self.crop)).double()
            out.append((img + grating * band).round().clamp(0, 255).to(torch.uint8))
        return torch.stack(out)

    def __getitems__(self, indices: Sequence[int]) -> list[dict[str, torch.Tensor]]:
        hr = self.render_hr(indices)
        items = []
        for h in hr:
            arr = h.permute(1, 2, 0).numpy()
            im = Image.fromarray(arr[..., 0] if self.channels == 1 else arr, "L" if self.channels == 1 else "RGB")
            items.append({"lr": image_to_tensor(bicubic_downscale(im, self.scale)), "hr": h.clone()})
        return items


# ---- factories and registration ----------------------------------------------------------------------------------


def sr_folder_factory(arg: str | None, request: DataRequest) -> Dataset:
    """``sr-folder:DIR``: random HR crops of the images in DIR, LR by bicubic downscaling."""
    scale, crop = sr_options(request)
    if not crop:
        raise DataError("sr-folder makes random crops and needs a crop size (image_size) > 0")
    return SRFolderDataset(
        path_arg("sr-folder", arg, "hr_images"),
        scale,
        crop,
        request.channels,
        request.seed,
        request.split,
        augment=sr_augment(request),
    )


def sr_pairs_factory(arg: str | None, request: DataRequest) -> Dataset:
    """``sr-pairs:DIR``: DIR/HR and DIR/LR_x{scale} pairs: aligned random crops of the model's size for training,
    whole images for every other split (the SR protocol scores whole images; a crop would score another number)."""
    scale, crop = sr_options(request)
    crop = crop if request.split == "train" else 0
    return SRPairsDataset(
        path_arg("sr-pairs", arg, "set"), scale, crop, request.channels, request.seed, augment=sr_augment(request)
    )


def shapes_sr_factory(arg: str | None, request: DataRequest) -> Dataset:
    """``shapes-sr``: procedural scenes with fine gratings."""
    no_arg("shapes-sr", arg)
    scale, crop = sr_options(request)
    return ShapesSRDataset(scale, crop or 96, request.channels, request.split, request.seed)


def register_datasets(register: Callable[..., None]) -> None:
    """Register the SR datasets through a ``ganzoo_register_datasets`` ``register`` callback."""
    register(
        "sr-folder",
        sr_folder_factory,
        tasks=TASKS,
        help="sr-folder:DIR, random HR crops of the images in DIR; LR by PIL bicubic downscaling",
    )
    register(
        "sr-pairs",
        sr_pairs_factory,
        tasks=TASKS,
        help="sr-pairs:DIR, given pairs DIR/HR/NAME and DIR/LR_x{scale}/NAME (Set5/Set14 layout)",
    )
    register(
        "shapes-sr",
        shapes_sr_factory,
        tasks=TASKS,
        help="procedural SR scenes: shapes plus fine gratings, LR by PIL bicubic; no download",
    )


def pil_from_tensor(img: torch.Tensor) -> Image.Image:
    """A uint8 ``C x H x W`` tensor as a PIL ``L``/``RGB`` image."""
    arr = img.permute(1, 2, 0).cpu().numpy().astype(np.uint8)
    return Image.fromarray(arr[..., 0] if arr.shape[2] == 1 else arr, "L" if arr.shape[2] == 1 else "RGB")
