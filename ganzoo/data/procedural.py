"""Procedural image data generated on the fly: the ``shapes`` dataset, and the counter-based randomness it shares.

Randomness here is *counter-based*: every random number is a hash of ``(stream key, index, slot)``, never the state
of a generator object. That makes item ``k`` a pure function of ``(seed, split, k)``, whichever worker computes it
and in whatever order, and lets a whole batch draw its numbers in one vectorised call.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from ganzoo.data.base import BatchDataset, DataError

__all__ = [
    "SHAPE_NAMES",
    "SPLITS",
    "ShapesDataset",
    "check_split",
    "counter_normal",
    "counter_uniform",
    "stream_key",
    "wrap_indices",
]

SPLITS = ("train", "val", "test")

# Class ids are positions in this list; keep the order stable, saved classifiers and metrics depend on it.
SHAPE_NAMES = ["circle", "square", "triangle", "diamond", "cross", "ring"]

_M64 = (1 << 64) - 1
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def _mix(z: np.ndarray) -> np.ndarray:
    # splitmix64's finaliser: a bijection on uint64 whose output bits each depend on every input bit.
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


def stream_key(*parts: int | str) -> int:
    """A 64-bit key naming one independent random stream, e.g. ``stream_key("shapes", seed, "train")``.

    Strings are hashed by their bytes (not Python's salted ``hash``) so keys are the same in every process.
    """
    z = np.array([0x6A09E667F3BCC908], dtype=np.uint64)
    for part in parts:
        if isinstance(part, str):
            words = [int.from_bytes(part.encode()[i : i + 8].ljust(8, b"\0"), "little") for i in range(0, len(part), 8)]
            words.append(len(part))
        else:
            words = [int(part) & _M64]
        for w in words:
            z = _mix(z ^ np.array([w], dtype=np.uint64)) + _GOLDEN
    return int(z[0])


def _as_counters(indices: Sequence[int] | np.ndarray) -> np.ndarray:
    return np.asarray([int(i) & _M64 for i in indices], dtype=np.uint64)


def counter_uniform(key: int, indices: Sequence[int] | np.ndarray, slots: int) -> np.ndarray:
    """Uniform floats in ``[0, 1)``, shape ``(len(indices), slots)``; entry ``[i, j]`` depends only on key, index, j."""
    base = _mix(_as_counters(indices) * _GOLDEN + np.uint64(key & _M64))
    offsets = (np.arange(1, slots + 1, dtype=np.uint64) * _MIX2)[None, :]
    bits = _mix(base[:, None] + offsets)
    # 53 high bits -> an exactly representable double in [0, 1).
    return (bits >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def counter_normal(key: int, indices: Sequence[int] | np.ndarray, slots: int) -> np.ndarray:
    """Standard normal floats, shape ``(len(indices), slots)``, by Box-Muller on :func:`counter_uniform`."""
    pairs = (slots + 1) // 2
    u = counter_uniform(key, indices, 2 * pairs)
    radius = np.sqrt(-2.0 * np.log1p(-u[:, :pairs]))  # log1p(-u) keeps u == 0 finite
    angle = 2.0 * math.pi * u[:, pairs:]
    return np.concatenate([radius * np.cos(angle), radius * np.sin(angle)], axis=1)[:, :slots]


def check_split(split: str) -> str:
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}")
    return split


def wrap_indices(indices: Sequence[int], length: int) -> tuple[list[int], list[int]]:
    """Validate virtual indices and return ``(indices, indices % length)`` as Python ints."""
    raw = [int(i) for i in indices]
    if any(i < 0 for i in raw):
        raise IndexError(f"dataset indices must be non-negative, got {min(raw)}")
    return raw, [i % length for i in raw]


def _box_sdf(u: torch.Tensor, v: torch.Tensor, half_w: torch.Tensor, half_h: torch.Tensor) -> torch.Tensor:
    # Exact signed distance to an axis-aligned box: outside, distance to the nearest point; inside, minus the
    # distance to the nearest edge. Exactness matters because coverage below is read straight off the distance.
    qx = u.abs() - half_w
    qy = v.abs() - half_h
    outside = torch.hypot(qx.clamp_min(0), qy.clamp_min(0))
    return outside + torch.maximum(qx, qy).clamp_max(0)


_SIN120 = math.sin(2 * math.pi / 3)


def _shape_sdf(kind: int, u: torch.Tensor, v: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """Signed distance in pixels (negative inside) to shape ``kind`` of scale ``r`` centred at the origin.

    Each shape fits in a disc of radius ``1.2 r`` (the placement margin relies on this) and the areas are of the
    same order, so size is no cue to the class.
    """
    name = SHAPE_NAMES[kind]
    if name == "circle":
        return torch.hypot(u, v) - r
    if name == "ring":
        return (torch.hypot(u, v) - 0.8 * r).abs() - 0.3 * r
    if name == "square":
        b = 0.85 * r
        return _box_sdf(u, v, b, b)
    if name == "diamond":
        # A rhombus taller than wide, so that a slightly rotated square never looks like one.
        a, b = 0.8 * r, 1.2 * r
        return (u.abs() * b + v.abs() * a - a * b) / torch.hypot(a, b)
    if name == "cross":
        arm, width = 1.1 * r, 0.38 * r
        return torch.minimum(_box_sdf(u, v, arm, width), _box_sdf(u, v, width, arm))
    if name == "triangle":
        # Equilateral, apex up (image y grows downwards), circumradius 1.2 r, inradius 0.6 r. The maximum of the
        # three edge half-planes is exact inside and along edges, which is all that anti-aliasing needs.
        bottom = v
        sides = torch.maximum(_SIN120 * u - 0.5 * v, -_SIN120 * u - 0.5 * v)
        return torch.maximum(bottom, sides) - 0.6 * r
    raise AssertionError(name)


# Luma weights of ITU-R BT.601, the ones PIL uses for RGB -> L, so grayscale renders match converted colour ones.
_LUMA = torch.tensor([0.299, 0.587, 0.114], dtype=torch.float64)


def _contrasting_colours(u: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Foreground and background RGB in ``[0, 1]`` from 8 uniforms per image, luma at least ~0.3 apart.

    One colour is made dark (luma <= 0.3) and the other light (luma >= 0.62), which side is which chosen at random,
    so the shape stands out in colour and in grayscale alike.
    """
    t = torch.from_numpy(u)
    raw_a, raw_b = t[:, 0:3], t[:, 3:6]
    dark_luma = 0.02 + 0.28 * t[:, 6:7]
    light_luma = 0.62 + 0.36 * t[:, 7:8]
    # Scaling towards black keeps the hue and can only lower luma (clipping at 1 lowers it further).
    luma_a = (raw_a @ _LUMA)[:, None].clamp_min(1e-3)
    dark = (raw_a * (dark_luma / luma_a)).clamp(0, 1)
    # Scaling the complement towards white, symmetrically; clipping at 0 can only raise luma.
    luma_b = (1 - (raw_b @ _LUMA))[:, None].clamp_min(1e-3)
    light = (1 - (1 - raw_b) * ((1 - light_luma) / luma_b)).clamp(0, 1)
    return dark, light


class ShapesDataset(BatchDataset):
    """Coloured geometric shapes on gradient backgrounds, labelled by shape kind, rendered on demand.

    Item ``k`` is ``{"image": uint8 C x H x W, "label": int64 scalar}``. Its class is a function of
    ``k % len(self)`` (so the virtual epochs keep the class sequence) and its appearance (placement, size,
    rotation, colours) of ``k`` itself, so every epoch draws new images. Rendering is anti-aliased by analytic
    coverage: a pixel's ink is ``clamp(0.5 - signed_distance, 0, 1)``, which is the exact area fraction for a
    straight edge and costs a single pass at the target resolution instead of supersampling.

    :param image_size: side in pixels (8 or more).
    :param channels: 3 for colour, 1 for grayscale (the BT.601 luma of the colour image).
    :param split: ``train`` (50,000 items per epoch), ``val`` or ``test`` (10,000); their streams are disjoint.
    :param seed: selects the stream.
    """

    EPOCH_SIZES = {"train": 50_000, "val": 10_000, "test": 10_000}
    class_names = SHAPE_NAMES
    num_classes = len(SHAPE_NAMES)

    def __init__(self, image_size: int = 64, channels: int = 3, split: str = "train", seed: int = 0) -> None:
        if channels not in (1, 3):
            raise DataError(f"shapes: unsupported channels {channels}; valid: 1 (grayscale), 3 (colour)")
        if not isinstance(image_size, int) or image_size < 8:
            raise DataError(f"shapes: unsupported image_size {image_size!r}; valid: an integer >= 8")
        self.image_size = image_size
        self.channels = channels
        self.split = check_split(split)
        self.seed = seed
        self._label_key = stream_key("shapes/label", seed, split)
        self._look_key = stream_key("shapes/look", seed, split)
        side = torch.arange(image_size, dtype=torch.float32) + 0.5  # pixel centres
        self._side = side
        self._ramp_axis = (side - image_size / 2) / (image_size / 2)

    def __len__(self) -> int:
        return self.EPOCH_SIZES[self.split]

    def labels_of(self, indices: Sequence[int]) -> torch.Tensor:
        """Class ids of the given (virtual) indices without rendering anything."""
        _, items = wrap_indices(indices, len(self))
        bits = counter_uniform(self._label_key, items, 1)[:, 0]
        return torch.from_numpy((bits * self.num_classes).astype(np.int64))

    def __getitems__(self, indices: Sequence[int]) -> list[dict[str, torch.Tensor]]:
        raw, _ = wrap_indices(indices, len(self))
        if not raw:
            return []
        labels = self.labels_of(raw)
        images = self.render(labels, counter_uniform(self._look_key, raw, 14))
        return [{"image": images[i], "label": labels[i]} for i in range(len(raw))]

    def render(self, labels: torch.Tensor, u: np.ndarray) -> torch.Tensor:
        """Render one image per label from 14 uniforms each; returns ``uint8 (N, C, S, S)``."""
        n, size = len(labels), self.image_size
        p = torch.from_numpy(u[:, :6]).float()
        scale = size * (0.2 + 0.16 * p[:, 0])
        # Keep the whole shape (within 1.2 * scale of its centre) and half a pixel of margin inside the frame.
        margin = 1.2 * scale + 0.5
        cx = margin + (size - 2 * margin) * p[:, 1]
        cy = margin + (size - 2 * margin) * p[:, 2]
        # Small rotations only: a square turned by 45 degrees would be a diamond.
        angle = (p[:, 3] - 0.5) * (math.pi * 50 / 180)
        cos, sin = torch.cos(angle), torch.sin(angle)

        coverage = torch.empty(n, size, size)
        dx = self._side[None, :] - cx[:, None]  # (n, S) along x
        dy = self._side[None, :] - cy[:, None]  # (n, S) along y
        order = torch.argsort(labels, stable=True)
        counts = torch.bincount(labels, minlength=self.num_classes).tolist()
        start = 0
        # One vectorised pass per shape kind over just the images of that kind.
        for kind, count in enumerate(counts):
            if count == 0:
                continue
            idx = order[start : start + count]
            start += count
            c, s = cos[idx, None, None], sin[idx, None, None]
            gx, gy = dx[idx, None, :], dy[idx, :, None]
            u_rot = c * gx + s * gy
            v_rot = c * gy - s * gx
            sdf = _shape_sdf(kind, u_rot, v_rot, scale[idx, None, None])
            coverage[idx] = (0.5 - sdf).clamp_(0, 1)

        dark, light = _contrasting_colours(u[:, 6:14])
        shape_is_light = torch.from_numpy(u[:, 4:5] < 0.5)
        fg = torch.where(shape_is_light, light, dark)
        bg = torch.where(shape_is_light, dark, light)
        if self.channels == 1:
            fg, bg = (fg @ _LUMA)[:, None], (bg @ _LUMA)[:, None]
        fg, bg = (fg * 255).float(), (bg * 255).float()

        # A gentle linear brightness ramp across the background so it is not always flat.
        ramp_angle = 2 * math.pi * p[:, 5]
        ramp_x = torch.cos(ramp_angle)[:, None, None] * self._ramp_axis[None, None, :]
        ramp_y = torch.sin(ramp_angle)[:, None, None] * self._ramp_axis[None, :, None]
        ramp = (ramp_x + ramp_y).mul_(12.0)  # +-17 grey levels at the corners at most
        canvas = ramp[:, None] + bg[:, :, None, None]
        canvas = torch.lerp(canvas, fg[:, :, None, None].expand_as(canvas), coverage[:, None])
        return canvas.add_(0.5).clamp_(0, 255).to(torch.uint8)
