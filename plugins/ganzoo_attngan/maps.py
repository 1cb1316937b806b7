"""Attention-map pictures as the AttnGAN paper shows them: the generated image, then one panel per word with the
word's attention over the image (from the last attentive stage) laid over it, the word written above."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw


def _panel(image: torch.Tensor, cell: int) -> torch.Tensor:
    img = image.float().clamp(-1, 1).add(1).mul(0.5)  # [0, 1]
    if img.shape[0] == 1:
        img = img.expand(3, -1, -1)
    return F.interpolate(img[None], size=(cell, cell), mode="nearest")[0]


def attention_picture(details: dict[str, Any], rows: int = 4, cell: int = 96) -> Image.Image:
    """A PIL picture of the first ``rows`` samples of :meth:`AttnGAN.generate_details` output."""
    images = details["images"][-1]
    attn = details["attention"][-1].float()  # (B, L, h, w)
    rows = min(rows, images.shape[0])
    n_words = max(len(w) for w in details["words"][:rows])
    label = 14
    pic = Image.new("RGB", (cell * (n_words + 1), (cell + label) * rows), "white")
    draw = ImageDraw.Draw(pic)
    for r in range(rows):
        y = r * (cell + label)
        base = _panel(images[r], cell)
        tiles = [base]
        for i in range(len(details["words"][r])):
            a = attn[r, i]
            a = (a - a.min()) / (a.max() - a.min() + 1e-8)
            heat = F.interpolate(a[None, None], size=(cell, cell), mode="bilinear", align_corners=False)[0]
            # Dim the image where the word does not look; keep it where it does, as the paper's figures do.
            tiles.append(base * (0.25 + 0.75 * heat))
        for j, t in enumerate(tiles):
            arr = (t.permute(1, 2, 0).numpy() * 255).round().clip(0, 255).astype("uint8")
            pic.paste(Image.fromarray(arr), (j * cell, y + label))
        draw.text((2, y), "image", fill="black")
        for i, w in enumerate(details["words"][r]):
            draw.text(((i + 1) * cell + 2, y), w, fill="black")
    return pic


def save_attention_maps(details: dict[str, Any], path: str | Path, rows: int = 4, cell: int = 96) -> Path:
    """Write :func:`attention_picture` as a PNG; returns its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    attention_picture(details, rows, cell).save(path, format="PNG")
    return path
