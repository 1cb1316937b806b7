"""Image helpers: uint8 <-> ``[-1, 1]`` tensors, tensors <-> PNG files, sample grids (with captions), animations,
2D point scatters."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image, ImageDraw, ImageFont
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
    return save_png(to_pil(make_grid(images, nrow)), path)


def save_image(image: Tensor, path: str | Path) -> Path:
    """Save one ``C x H x W`` ``[-1, 1]`` image as a PNG (parents created; written atomically)."""
    return save_png(to_pil(image), path)


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


# ---- labelled grids --------------------------------------------------------------------------------------------------

_PAD = 2  # pixels between cells, as make_grid's padding
_INK = 0  # black text on the white padding
MIN_LABELLED_CELL = 32
"""Cells of a labelled grid narrower than this many pixels are enlarged by a whole factor, so words fit under them."""


@functools.lru_cache(maxsize=1)
def _font() -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    # Pillow's built-in font: no font file to find or ship.
    return ImageFont.load_default()


def _text_width(text: str) -> int:
    if not text:
        return 0
    box = _font().getbbox(text)
    return int(box[2] - box[0])


def _line_height() -> int:
    box = _font().getbbox("Agy|")
    return int(box[3]) + 2


def _fit(word: str, width: int) -> str:
    """``word`` cut (with a trailing ".") to fit ``width`` pixels; a single character when nothing fits."""
    if _text_width(word) <= width:
        return word
    for end in range(len(word) - 1, 0, -1):
        if _text_width(word[:end] + ".") <= width:
            return word[:end] + "."
    return word[:1]


def wrap_text(text: str, width: int, max_lines: int) -> list[str]:
    """``text`` broken at spaces into lines of at most ``width`` pixels in the built-in font; a word wider than a
    line is cut, and text beyond ``max_lines`` lines is dropped with the last line ending in "..".

    :param text: the caption.
    :param width: the line width in pixels.
    :param max_lines: the most lines to use (>= 1).
    :returns: the lines (none for an empty text).
    """
    lines: list[str] = []
    words = text.split()
    i = 0
    while i < len(words) and len(lines) < max_lines:
        line = _fit(words[i], width)
        i += 1
        while i < len(words) and _text_width(f"{line} {words[i]}") <= width:
            line = f"{line} {words[i]}"
            i += 1
        lines.append(line)
    if i < len(words) and lines:
        last = lines[-1]
        while last and _text_width(last + "..") > width:
            last = last[:-1]
        lines[-1] = last + ".."
    return lines


@dataclass
class SampleGrid:
    """Images laid out in a grid, with optional text: a title, a caption above each column, a label left of each
    row and a caption under each image. What :meth:`ganzoo.GANVariant.sample_images` returns, and what the sample
    commands write; :meth:`render` draws it with Pillow's built-in font (no font file needed).

    Cells fill the grid row by row. ``columns`` may be shorter than ``ncol`` when it divides it: the captions then
    repeat over groups of columns (``input / output / target`` over two items per row gives six columns).
    """

    images: Tensor
    """``N x C x H x W`` images in ``[-1, 1]`` (C is 1 or 3), the cells in row-major order."""
    ncol: int | None = None
    """Cells per row; ``None``: a square-ish grid (``ceil(sqrt(N))``)."""
    columns: Sequence[str] = ()
    """Captions above the columns, repeating when the grid has a multiple of their number of columns."""
    captions: Sequence[str] = ()
    """One caption under each image (``N`` strings, empty ones allowed), wrapped to the image's width."""
    rows: Sequence[str] = ()
    """One label left of each row."""
    title: str = ""
    """A line (wrapped) across the top of the grid."""

    def __post_init__(self) -> None:
        n = int(self.images.shape[0])
        if self.images.dim() != 4 or n == 0:
            raise ValueError(f"a sample grid needs N x C x H x W images (N >= 1), got shape {tuple(self.images.shape)}")
        ncol = self.ncol or max(1, math.ceil(math.sqrt(n)))
        if ncol < 1:
            raise ValueError(f"ncol must be >= 1, got {self.ncol}")
        self.ncol = ncol
        if self.columns and ncol % len(self.columns):
            raise ValueError(f"{len(self.columns)} column captions do not divide a grid of {ncol} columns")
        if self.captions and len(self.captions) != n:
            raise ValueError(f"{len(self.captions)} captions for {n} images")
        if self.rows and len(self.rows) != self.nrows:
            raise ValueError(f"{len(self.rows)} row labels for {self.nrows} rows")

    @property
    def nrows(self) -> int:
        """Rows of the grid."""
        return math.ceil(int(self.images.shape[0]) / int(self.ncol or 1))

    @classmethod
    def of_columns(
        cls,
        columns: Sequence[tuple[str, Tensor]],
        *,
        captions: Sequence[Sequence[str]] | None = None,
        per_row: int | None = None,
        title: str = "",
    ) -> SampleGrid:
        """Items side by side: one group of cells per item (e.g. input | output | target), the groups filling rows
        of ``per_row`` items, each column captioned with its name.

        :param columns: ``(name, images)`` pairs, every ``images`` ``B x C x H x W`` with the same ``B``, ``C``,
            ``H`` and ``W``.
        :param captions: optional captions under the cells, one sequence per column (``B`` strings each).
        :param per_row: items per grid row; default: about as many rows of cells as columns of them.
        :param title: a line above the grid.
        :returns: the grid.
        """
        names = [name for name, _ in columns]
        stacked = torch.stack([x.detach().float().clamp(-1, 1) for _, x in columns], dim=1)
        b, k = stacked.shape[:2]
        if per_row is None:
            per_row = max(1, round(math.sqrt(b / k)))
        per_row = min(per_row, b)
        texts: list[str] = []
        if captions is not None:
            texts = [str(captions[j][i]) for i in range(b) for j in range(k)]
        return cls(stacked.flatten(0, 1), ncol=k * per_row, columns=names, captions=texts, title=title)

    def render(self) -> Image.Image:
        """The grid as a PIL image (``L`` for one channel, ``RGB`` for three) on a white background, the text in
        black; a grid without text is pixel for pixel :func:`make_grid`'s. Images narrower than
        :data:`MIN_LABELLED_CELL` pixels are enlarged (nearest neighbour) when there is text."""
        n, c, h, w = self.images.shape
        ncol, nrows = int(self.ncol or 1), self.nrows
        pitch_x = w + _PAD
        if not (self.rows or self.columns or self.captions or self.title):
            return to_pil(make_grid(self.images.float(), ncol, _PAD))
        images = self.images.float()
        if w < MIN_LABELLED_CELL:  # too narrow for a word: enlarge the pixels (nearest) rather than shrink the text
            factor = math.ceil(MIN_LABELLED_CELL / w)
            images = torch.nn.functional.interpolate(images, scale_factor=factor, mode="nearest")
            h, w = h * factor, w * factor
        grid = make_grid(images, ncol, _PAD)
        if n == 1:  # torchvision returns a lone image without its padding; the layout below counts on it
            grid = torch.nn.functional.pad(grid, (_PAD,) * 4, value=1.0)
        body = to_pil(grid)
        lh = _line_height()
        col_lines = [wrap_text(t, w, 2) for t in self.columns]
        cap_lines = [wrap_text(t, w, 3) for t in self.captions]
        cap_h = max((len(x) for x in cap_lines), default=0) * lh
        left = max((_text_width(t) for t in self.rows), default=0) + (2 * _PAD if self.rows else 0)
        width = left + body.width
        title_lines = wrap_text(self.title, width - 2 * _PAD, 3) if self.title else []
        title_h = len(title_lines) * lh
        head_h = max((len(x) for x in col_lines), default=0) * lh
        pitch_y = h + _PAD + cap_h
        height = title_h + head_h + _PAD + nrows * pitch_y
        page = Image.new(body.mode, (width, height), 255 if body.mode == "L" else (255, 255, 255))
        ink = _INK if body.mode == "L" else (_INK,) * 3
        draw = ImageDraw.Draw(page)
        font = _font()
        for i, line in enumerate(title_lines):
            draw.text((left + _PAD, i * lh), line, fill=ink, font=font)
        top = title_h + head_h
        for r in range(nrows):
            # The cells of row r, cut from make_grid's picture, moved down to make room for the captions above.
            strip = body.crop((0, r * (h + _PAD), body.width, (r + 1) * (h + _PAD) + _PAD))
            page.paste(strip, (left, top + r * pitch_y))
        for j in range(ncol if col_lines else 0):
            lines = col_lines[j % len(col_lines)]
            x0 = left + _PAD + j * pitch_x
            for i, line in enumerate(lines):
                y = title_h + head_h - (len(lines) - i) * lh
                draw.text((x0 + (w - _text_width(line)) // 2, y), line, fill=ink, font=font)
        for r, label in enumerate(self.rows):
            y = top + _PAD + r * pitch_y + (h - lh) // 2
            draw.text((_PAD, y), label, fill=ink, font=font)
        for k, lines in enumerate(cap_lines):
            r, j = divmod(k, ncol)
            x0 = left + _PAD + j * pitch_x
            y0 = top + _PAD + r * pitch_y + h + 1
            for i, line in enumerate(lines):
                draw.text((x0 + (w - _text_width(line)) // 2, y0 + i * lh), line, fill=ink, font=font)
        return page

    def save(self, path: str | Path) -> Path:
        """Write :meth:`render`'s picture as a PNG (parents created; written atomically).

        :param path: the file to write.
        :returns: ``path``.
        """
        return save_png(self.render(), path)


def save_png(image: Image.Image, path: str | Path) -> Path:
    """Write a PIL image as a PNG, atomically (parents created).

    :param image: the picture.
    :param path: the file to write.
    :returns: ``path`` as a :class:`~pathlib.Path`.
    """
    import io

    from .files import atomic_write_bytes

    buf = io.BytesIO()
    image.save(buf, format="PNG")
    atomic_write_bytes(Path(path), buf.getvalue())
    return Path(path)


ANIMATION_SUFFIXES = (".gif", ".webp")
"""File endings :func:`save_animation` writes."""


def save_animation(frames: Sequence[Image.Image], path: str | Path, frame_ms: int = 120) -> Path:
    """Write pictures as an animated GIF or WebP (by ``path``'s ending), looping forever, atomically.

    :param frames: the pictures, all of one size and mode.
    :param path: a file ending in ``.gif`` or ``.webp``.
    :param frame_ms: how long each frame shows, in milliseconds.
    :returns: ``path`` as a :class:`~pathlib.Path`.
    :raises ValueError: for another ending or no frames.
    """
    import io

    from .files import atomic_write_bytes

    path = Path(path)
    fmt = {".gif": "GIF", ".webp": "WEBP"}.get(path.suffix.lower())
    if fmt is None or not frames:
        raise ValueError(f"an animation needs frames and a file ending in .gif or .webp, got {path.name!r}")
    first, *rest = frames
    buf = io.BytesIO()
    extra = {"lossless": True} if fmt == "WEBP" else {"disposal": 1}
    first.save(buf, format=fmt, save_all=True, append_images=rest, duration=frame_ms, loop=0, **extra)
    atomic_write_bytes(path, buf.getvalue())
    return path


def class_rows(images: Tensor, labels: Tensor, names: Sequence[str] | None = None) -> SampleGrid:
    """A grid of class-conditional samples with one row per run of equal labels, each row labelled with its class
    (rows shorter than the longest are filled with background).

    :param images: ``N x C x H x W`` samples in ``[-1, 1]``.
    :param labels: their ``N`` class indices, grouped in runs (``0 0 0 1 1 1 ...``).
    :param names: class names by index; default ``"class K"``.
    :returns: the labelled grid.
    """
    ids = [int(k) for k in labels.flatten().tolist()]
    if len(ids) != images.shape[0]:
        raise ValueError(f"{len(ids)} labels for {images.shape[0]} images")
    runs: list[tuple[int, int, int]] = []  # (label, start, stop)
    for i, k in enumerate(ids):
        if runs and runs[-1][0] == k:
            runs[-1] = (k, runs[-1][1], i + 1)
        else:
            runs.append((k, i, i + 1))
    ncol = max(stop - start for _, start, stop in runs)
    blank = torch.ones_like(images[:1], dtype=torch.float32)
    cells = []
    for _, start, stop in runs:
        cells += [images[start:stop].float(), blank.expand(ncol - (stop - start), *images.shape[1:])]
    text = [names[k] if names is not None and k < len(names) else f"class {k}" for k, _, _ in runs]
    return SampleGrid(torch.cat(cells), ncol=ncol, rows=text)
