"""Datasets of the image-to-image tasks ``paired`` (Pix2Pix) and ``unpaired`` (CycleGAN).

Items are ``{"a": uint8 C x H x W, "b": uint8 C x H x W}``; for paired data ``b`` is the ground truth of ``a``, for
unpaired data the two are independent draws from the two domains (the procedural ``shapes-styles`` adds
``"b_true"``, the hidden translation of ``a``, for evaluation only).

* ``shapes-pairs``: a flat-colour class map of 1-3 shapes -> their shaded, outlined, striped rendering with a drop
  shadow. Everything in the rendering follows from the map except the stripes' phase and angle and the background
  grain, which are hidden per scene: an L1-trained generator can only average them away (blur), an adversarial one
  has to draw them.
* ``shapes-styles``: the same kind of scenes in two styles, A (flat colours on a dark background) and B (pastel fill,
  dark outline, drop shadow on a light background); ``a`` and ``b`` come from independent scenes.
* ``aligned:PATH``: the pix2pix layout, ``PATH/{train,val,test}/*`` images with A and B side by side (A left).
* ``unaligned:PATH``: the CycleGAN layout, ``PATH/{trainA,trainB,testA,testB}`` (``valA``/``valB`` when present).
* ``mnist-edges:PATH``: MNIST IDX files in PATH as outline -> digit pairs.

Augmentation is pix2pix's jitter, only on the ``train`` split: resize to ``load_size``, random crop back to
``image_size``, random horizontal flip, all drawn from the (virtual) index ``k``; the paired sides share one draw,
the unpaired sides draw independently. Its options come from ``DataRequest.options``: ``load_size`` (0 or absent:
no resize), ``crop`` (random crop, default on when ``load_size > image_size``), ``flip``, and for aligned data
``direction`` (``b2a`` swaps the halves).
"""

from __future__ import annotations

import colorsys
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import Dataset

from ganzoo.data.base import DataError, DataRequest, no_arg, path_arg
from ganzoo.data.files import check_channels, image_to_tensor, list_images, open_image
from ganzoo.data.procedural import SHAPE_NAMES, _shape_sdf, check_split, counter_uniform, stream_key, wrap_indices

__all__ = [
    "AlignedFolderDataset",
    "Jitter",
    "JitterSettings",
    "MnistEdgesDataset",
    "ShapesPairsDataset",
    "ShapesStylesDataset",
    "UnalignedFolderDataset",
    "jitter_options",
    "register_datasets",
]

_PAIRED = ("paired",)
_UNPAIRED = ("unpaired",)
_LUMA = torch.tensor([0.299, 0.587, 0.114])


# ---------------------------------------------------------------------------------------------------------- jitter


class Jitter:
    """Pix2pix's random jitter and mirroring, drawn from an item's virtual index (so every epoch differs and a
    resumed run sees the same draws).

    :param image_size: output side.
    :param options: ``load_size``, ``crop``, ``flip`` (see the module docstring).
    :param train: jitter only on the training split; otherwise images are just resized to ``image_size``.
    """

    def __init__(self, image_size: int, options: dict[str, Any] | None, train: bool, key: int):
        opts = options or {}
        self.image_size = image_size
        load = int(opts.get("load_size") or image_size)
        if load < image_size:
            raise DataError(f"load_size {load} is smaller than image_size {image_size}; use load_size >= image_size")
        self.crop = bool(opts.get("crop", load > image_size)) and train
        self.load_size = load if self.crop else image_size
        self.flip = bool(opts.get("flip", False)) and train
        self.key = key

    def params(self, k: int, stream: int = 0) -> tuple[int, int, bool]:
        """``(top, left, flip)`` for virtual index ``k``; ``stream`` gives an independent draw for the same k."""
        u = counter_uniform(self.key + stream, [k], 3)[0]
        span = self.load_size - self.image_size + 1
        top, left = (int(u[0] * span), int(u[1] * span)) if self.crop else (0, 0)
        return top, left, bool(self.flip and u[2] < 0.5)

    def apply(self, image: torch.Tensor, params: tuple[int, int, bool]) -> torch.Tensor:
        """Crop and mirror a ``C x load_size x load_size`` image."""
        top, left, flip = params
        s = self.image_size
        out = image[:, top : top + s, left : left + s]
        return (out.flip(-1) if flip else out).contiguous()


class JitterSettings(Protocol):
    """The config fields :func:`jitter_options` reads (a translation variant's config has them)."""

    image_size: int
    load_size: int
    jitter: bool
    flip: bool


def jitter_options(settings: JitterSettings) -> dict[str, Any]:
    """The ``DataRequest.options`` that ask a translation dataset for the reference's jitter.

    :param settings: ``image_size`` (the crop), ``load_size`` (the side before the crop; 0 scales ``image_size``
        by 286/256 as the reference does at 256 px), ``jitter`` (random resize-and-crop on) and ``flip``.
    :returns: ``{"load_size": ..., "crop": ..., "flip": ...}`` for :class:`Jitter`.
    """
    load = settings.load_size or round(settings.image_size * 286 / 256)
    return {
        "load_size": load if settings.jitter else settings.image_size,
        "crop": settings.jitter,
        "flip": settings.flip,
    }


def _resize_pil(im: Image.Image, size: int) -> Image.Image:
    # Square, aspect ratio not kept: the reference's resize_and_crop does the same (its data is square anyway).
    return im if im.size == (size, size) else im.resize((size, size), Image.Resampling.BICUBIC)


# ---------------------------------------------------------------------------------------------- procedural scenes


class _Scenes:
    """Random scenes of 1-3 shapes, a pure function of (stream key, scene index), rendered at any size.

    Geometry is in units of the image side, so a scene rendered at ``load_size`` for jitter is the same scene.
    """

    MAX_SHAPES = 3
    SLOTS = 1 + MAX_SHAPES * 8 + 2

    def __init__(self, key: int):
        self.key = key

    def draw(self, index: int) -> dict[str, Any]:
        u = counter_uniform(self.key, [index], self.SLOTS)[0]
        n = 1 + int(u[0] * self.MAX_SHAPES)
        shapes = []
        for j in range(n):
            p = u[1 + 8 * j : 9 + 8 * j]
            scale = 0.13 + 0.1 * p[1]
            margin = 1.2 * scale + 0.02
            shapes.append(
                {
                    "kind": int(p[0] * len(SHAPE_NAMES)),
                    "scale": scale,
                    "cx": margin + (1 - 2 * margin) * p[2],
                    "cy": margin + (1 - 2 * margin) * p[3],
                    "angle": (p[4] - 0.5) * math.radians(50),
                    "hue": p[5],
                    "stripe_angle": p[6] * math.pi,
                    "stripe_phase": p[7] * 2 * math.pi,
                }
            )
        return {"shapes": shapes, "grain": int(u[-1] * 2**31), "light": u[-2]}

    @staticmethod
    def sdf(shape: dict[str, Any], size: int, dx: float = 0.0, dy: float = 0.0) -> torch.Tensor:
        """Signed distance in pixels (negative inside) of ``shape`` on a ``size`` grid, shifted by (dx, dy) px."""
        side = torch.arange(size, dtype=torch.float32) + 0.5
        gx = (side - shape["cx"] * size - dx)[None, :]
        gy = (side - shape["cy"] * size - dy)[:, None]
        c, s = math.cos(shape["angle"]), math.sin(shape["angle"])
        u_rot, v_rot = c * gx + s * gy, c * gy - s * gx
        return _shape_sdf(shape["kind"], u_rot, v_rot, torch.tensor(shape["scale"] * size))


def _coverage(sdf: torch.Tensor) -> torch.Tensor:
    return (0.5 - sdf).clamp(0, 1)


def _over(canvas: torch.Tensor, colour: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Composite ``colour`` (3 or 3 x H x W) over ``canvas`` (3 x H x W) with coverage ``alpha`` (H x W)."""
    if colour.dim() == 1:
        colour = colour[:, None, None]
    return torch.lerp(canvas, colour.expand_as(canvas), alpha[None])


def _finish(canvas: torch.Tensor, channels: int) -> torch.Tensor:
    """Float RGB in 0..1 -> uint8 ``C x H x W`` (BT.601 luma for one channel)."""
    if channels == 1:
        canvas = torch.einsum("chw,c->hw", canvas, _LUMA)[None]
    return canvas.mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8)


# Label-map colours of the shape kinds (circle, square, triangle, diamond, cross, ring): saturated and far apart.
_CLASS_COLOURS = torch.tensor(
    [[0.9, 0.1, 0.1], [0.1, 0.8, 0.1], [0.15, 0.3, 1.0], [0.95, 0.9, 0.1], [0.9, 0.1, 0.9], [0.1, 0.85, 0.9]]
)
# The rendering's base colour of each kind: its own muted palette, so the mapping is not a plain recolouring.
_RENDER_COLOURS = torch.tensor(
    [[0.75, 0.35, 0.2], [0.3, 0.55, 0.35], [0.25, 0.35, 0.65], [0.85, 0.7, 0.3], [0.55, 0.3, 0.6], [0.3, 0.6, 0.65]]
)


def _render_label_map(scene: dict[str, Any], size: int) -> torch.Tensor:
    canvas = torch.full((3, size, size), 0.08)
    for sh in scene["shapes"]:
        canvas = _over(canvas, _CLASS_COLOURS[sh["kind"]], _coverage(_Scenes.sdf(sh, size)))
    return canvas


def _render_photo(scene: dict[str, Any], size: int) -> torch.Tensor:
    side = (torch.arange(size, dtype=torch.float32) + 0.5) / size
    # Background: a vertical warm-to-cool gradient (deterministic) plus fine grain (hidden, per scene).
    top, bottom = torch.tensor([0.93, 0.88, 0.78]), torch.tensor([0.7, 0.76, 0.85])
    canvas = top[:, None, None] + (bottom - top)[:, None, None] * side[None, :, None].expand(3, size, size)
    gen = torch.Generator().manual_seed(scene["grain"])
    canvas = canvas + 0.06 * (torch.rand(1, size, size, generator=gen) - 0.5)
    shadow_off = 0.03 * size
    for sh in scene["shapes"]:
        sdf = _Scenes.sdf(sh, size)
        # Soft drop shadow, offset down-right.
        shadow = (0.5 - _Scenes.sdf(sh, size, -shadow_off, -shadow_off) / (0.02 * size + 1)).clamp(0, 1) * 0.45
        canvas = _over(canvas, torch.zeros(3), shadow)
        # Shading: brighter towards the inside (a bevel), read off the distance to the edge.
        depth = (-sdf / (sh["scale"] * size)).clamp(0, 1)
        base = _RENDER_COLOURS[sh["kind"]][:, None, None] * (0.75 + 0.45 * depth[None])
        # Stripes of hidden angle and phase: the part of the image the label map does not determine.
        period = 0.06 * size
        sx = torch.arange(size, dtype=torch.float32)[None, :]
        sy = torch.arange(size, dtype=torch.float32)[:, None]
        t = (sx * math.cos(sh["stripe_angle"]) + sy * math.sin(sh["stripe_angle"])) * (2 * math.pi / period)
        stripes = 0.5 + 0.5 * torch.sin(t + sh["stripe_phase"])
        fill = base * (0.8 + 0.35 * stripes[None])
        canvas = _over(canvas, fill.clamp(0, 1), _coverage(sdf))
        # Dark outline about 1.5 px wide at 64 px, scaling with the image.
        width = max(1.0, 0.024 * size)
        outline = (0.5 + width / 2 - sdf.abs()).clamp(0, 1)
        canvas = _over(canvas, _RENDER_COLOURS[sh["kind"]] * 0.35, outline)
    return canvas.clamp(0, 1)


def _hue_rgb(hue: float, sat: float, val: float) -> torch.Tensor:
    return torch.tensor(colorsys.hsv_to_rgb(hue, sat, val), dtype=torch.float32)


def _render_style_a(scene: dict[str, Any], size: int) -> torch.Tensor:
    canvas = torch.tensor([0.08, 0.08, 0.11])[:, None, None].expand(3, size, size).clone()
    for sh in scene["shapes"]:
        canvas = _over(canvas, _hue_rgb(sh["hue"], 0.85, 0.9), _coverage(_Scenes.sdf(sh, size)))
    return canvas


def _render_style_b(scene: dict[str, Any], size: int) -> torch.Tensor:
    canvas = torch.tensor([0.94, 0.92, 0.87])[:, None, None].expand(3, size, size).clone()
    off = 0.03 * size
    width = max(1.0, 0.035 * size)
    for sh in scene["shapes"]:
        sdf = _Scenes.sdf(sh, size)
        shadow = _coverage(_Scenes.sdf(sh, size, -off, -off)) * 0.3
        canvas = _over(canvas, torch.zeros(3), shadow)
        canvas = _over(canvas, _hue_rgb(sh["hue"], 0.35, 0.97), _coverage(sdf))
        outline = (0.5 + width / 2 - sdf.abs()).clamp(0, 1)
        canvas = _over(canvas, _hue_rgb(sh["hue"], 0.9, 0.35), outline)
    return canvas


class _ProceduralPairs(Dataset):
    EPOCH_SIZES = {"train": 2000, "val": 200, "test": 200}
    name = ""

    def __init__(self, request: DataRequest):
        size = request.image_size
        if not isinstance(size, int) or size < 16:
            raise DataError(f"{self.name}: unsupported image_size {size!r}; valid: an integer >= 16")
        self.image_size = size
        self.channels = check_channels(request.channels, self.name)
        self.split = check_split(request.split)
        self.scenes = _Scenes(stream_key(self.name + "/scene", request.seed, self.split))
        self.jitter = Jitter(
            size, request.options, self.split == "train", stream_key(self.name + "/jitter", request.seed)
        )

    def __len__(self) -> int:
        return self.EPOCH_SIZES[self.split]

    def _render(
        self, fn: Callable[[dict[str, Any], int], torch.Tensor], scene: dict[str, Any], params: tuple[int, int, bool]
    ) -> torch.Tensor:
        img = _finish(fn(scene, self.jitter.load_size), self.channels)
        return self.jitter.apply(img, params)


class ShapesPairsDataset(_ProceduralPairs):
    """``shapes-pairs``: label map (``a``) -> rendering (``b``) of scene ``k % len``; jitter drawn from ``k``."""

    name = "shapes-pairs"

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        (k,), (item,) = wrap_indices([index], len(self))
        scene = self.scenes.draw(item)
        params = self.jitter.params(k)
        return {"a": self._render(_render_label_map, scene, params), "b": self._render(_render_photo, scene, params)}


class ShapesStylesDataset(_ProceduralPairs):
    """``shapes-styles``: ``a`` is scene ``k % len`` in style A, ``b`` an independent scene (index drawn from ``k``)
    in style B, ``b_true`` scene ``k % len`` in style B with the jitter of ``a`` (evaluation only)."""

    name = "shapes-styles"

    def __init__(self, request: DataRequest):
        super().__init__(request)
        self._b_key = stream_key(self.name + "/b-index", request.seed, self.split)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        (k,), (item,) = wrap_indices([index], len(self))
        other = int(counter_uniform(self._b_key, [k], 1)[0, 0] * len(self))
        scene_a, scene_b = self.scenes.draw(item), self.scenes.draw(other)
        pa, pb = self.jitter.params(k), self.jitter.params(k, stream=1)
        return {
            "a": self._render(_render_style_a, scene_a, pa),
            "b": self._render(_render_style_b, scene_b, pb),
            "b_true": self._render(_render_style_b, scene_a, pa),
        }


# ------------------------------------------------------------------------------------------------- folder layouts


def _split_dir(root: Path, split: str, suffix: str = "") -> Path:
    """``root/split`` (``val`` falls back to ``test`` and back again), or a DataError listing what is there."""
    candidates = [split] + {"val": ["test"], "test": ["val"]}.get(split, [])
    for name in candidates:
        d = root / (name + suffix)
        if d.is_dir():
            return d
    if not root.is_dir():
        raise DataError(f"dataset folder not found: {root}")
    have = sorted(p.name for p in root.iterdir() if p.is_dir()) or ["(no folders)"]
    raise DataError(f"no {split}{suffix} folder in {root}; expected {split}{suffix}/, found: {', '.join(have)}")


class AlignedFolderDataset(Dataset):
    """``aligned:PATH``: pix2pix's layout, each image ``A|B`` side by side (``A`` left, ``B`` right, equal halves).

    Widths are checked when the dataset is built (from the file headers only), so an odd-width image is reported
    by name before training starts.
    """

    def __init__(self, root: str | os.PathLike, request: DataRequest):
        self.root = Path(root)
        self.image_size = request.image_size
        self.channels = check_channels(request.channels, "aligned")
        split = check_split(request.split)
        self.files = list_images(_split_dir(self.root, split))
        for f in self.files:
            try:
                with Image.open(f) as im:
                    w = im.size[0]
            except (OSError, SyntaxError, ValueError) as e:
                raise DataError(f"cannot read image {f}: {e}") from None
            if w % 2:
                raise DataError(f"aligned image {f} has odd width {w}; A|B pairs need two halves of equal width")
        direction = (request.options or {}).get("direction", "a2b")
        if direction not in ("a2b", "b2a"):
            raise DataError(f"direction {direction!r} is not valid; use a2b or b2a")
        self.swap = direction == "b2a"
        self.jitter = Jitter(
            self.image_size, request.options, split == "train", stream_key("aligned/jitter", request.seed)
        )

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        (k,), (item,) = wrap_indices([index], len(self))
        path = self.files[item]
        im = open_image(path, self.channels)
        w, h = im.size
        if w % 2:
            raise DataError(f"aligned image {path} has odd width {w}; A|B pairs need two halves of equal width")
        halves = [im.crop((0, 0, w // 2, h)), im.crop((w // 2, 0, w, h))]
        if self.swap:
            halves.reverse()
        params = self.jitter.params(k)
        a, b = (self.jitter.apply(image_to_tensor(_resize_pil(x, self.jitter.load_size)), params) for x in halves)
        return {"a": a, "b": b}


class UnalignedFolderDataset(Dataset):
    """``unaligned:PATH``: CycleGAN's layout, ``PATH/trainA``, ``PATH/trainB`` (``testA``/``testB``, ``valA``/``valB``).

    Item ``k`` is file ``k % len(A)`` of A and a file of B drawn from ``k`` (as the reference draws a random B per
    item); the length is that of the larger domain.
    """

    def __init__(self, root: str | os.PathLike, request: DataRequest):
        self.root = Path(root)
        self.image_size = request.image_size
        self.channels = check_channels(request.channels, "unaligned")
        split = check_split(request.split)
        self.files_a = list_images(_split_dir(self.root, split, "A"))
        self.files_b = list_images(_split_dir(self.root, split, "B"))
        self.jitter = Jitter(
            self.image_size, request.options, split == "train", stream_key("unaligned/jitter", request.seed)
        )
        self._b_key = stream_key("unaligned/b-index", request.seed, split)

    def __len__(self) -> int:
        return max(len(self.files_a), len(self.files_b))

    def _load(self, path: Path, params: tuple[int, int, bool]) -> torch.Tensor:
        im = _resize_pil(open_image(path, self.channels), self.jitter.load_size)
        return self.jitter.apply(image_to_tensor(im), params)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        (k,), (item,) = wrap_indices([index], len(self))
        j = int(counter_uniform(self._b_key, [k], 1)[0, 0] * len(self.files_b))
        return {
            "a": self._load(self.files_a[item % len(self.files_a)], self.jitter.params(k)),
            "b": self._load(self.files_b[j], self.jitter.params(k, stream=1)),
        }


class MnistEdgesDataset(Dataset):
    """``mnist-edges:DIR``: MNIST as a paired task, the digit's outline (``a``, a morphological gradient, white on
    black) -> the digit (``b``). Jitter as for the other paired data."""

    def __init__(self, root: str | os.PathLike, request: DataRequest):
        from ganzoo.data.files import MnistDataset

        split = check_split(request.split)
        self.jitter = Jitter(
            request.image_size, request.options, split == "train", stream_key("mnist-edges", request.seed)
        )
        self.mnist = MnistDataset(root, split, self.jitter.load_size, check_channels(request.channels, "mnist-edges"))

    def __len__(self) -> int:
        return len(self.mnist)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        (k,), _ = wrap_indices([index], len(self))
        digit = self.mnist[k]["image"]
        x = digit[:1].float()[None]
        # Dilation minus erosion: a band about two pixels wide along the stroke boundaries.
        grad = F.max_pool2d(x, 3, 1, 1) + F.max_pool2d(-x, 3, 1, 1)
        edges = (grad[0] > 64).to(torch.uint8).mul_(255).expand_as(digit).contiguous()
        params = self.jitter.params(k)
        return {"a": self.jitter.apply(edges, params), "b": self.jitter.apply(digit, params)}


# ---------------------------------------------------------------------------------------------------- registration


def shapes_pairs_factory(arg: str | None, request: DataRequest) -> Dataset:
    """``shapes-pairs``: procedural label map -> rendering pairs."""
    no_arg("shapes-pairs", arg)
    return ShapesPairsDataset(request)


def shapes_styles_factory(arg: str | None, request: DataRequest) -> Dataset:
    """``shapes-styles``: procedural unpaired styles with the hidden pairing."""
    no_arg("shapes-styles", arg)
    return ShapesStylesDataset(request)


def aligned_factory(arg: str | None, request: DataRequest) -> Dataset:
    """``aligned:DIR``: pix2pix A|B images in DIR/train, DIR/val, DIR/test."""
    return AlignedFolderDataset(path_arg("aligned", arg), request)


def unaligned_factory(arg: str | None, request: DataRequest) -> Dataset:
    """``unaligned:DIR``: CycleGAN DIR/trainA, trainB, testA, testB."""
    return UnalignedFolderDataset(path_arg("unaligned", arg), request)


def mnist_edges_factory(arg: str | None, request: DataRequest) -> Dataset:
    """``mnist-edges:DIR``: MNIST outline -> digit pairs from the IDX files in DIR."""
    return MnistEdgesDataset(path_arg("mnist-edges", arg), request)


def register_datasets(register: Callable[..., None]) -> None:
    """Register the translation datasets through a ``ganzoo_register_datasets`` ``register`` callback."""
    register(
        "shapes-pairs",
        shapes_pairs_factory,
        tasks=_PAIRED,
        help="procedural label map -> shaded, striped rendering (2000 train scenes), any size >= 16; no download",
    )
    register(
        "shapes-styles",
        shapes_styles_factory,
        tasks=_UNPAIRED,
        help="procedural unpaired styles (flat on dark <-> outlined on light), with the hidden pairing b_true",
    )
    register(
        "aligned", aligned_factory, tasks=_PAIRED, help="aligned:DIR, side-by-side A|B images in DIR/train, val, test"
    )
    register(
        "unaligned", unaligned_factory, tasks=_UNPAIRED, help="unaligned:DIR, unpaired DIR/trainA, trainB, testA, testB"
    )
    register(
        "mnist-edges", mnist_edges_factory, tasks=_PAIRED, help="mnist-edges:DIR, MNIST digit outline -> digit pairs"
    )
