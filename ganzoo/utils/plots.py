"""Line plots of training curves drawn with Pillow (no plotting library needed): ``log.jsonl`` -> PNG."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

COLOURS = [
    (31, 119, 180),
    (214, 39, 40),
    (44, 160, 44),
    (255, 127, 14),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
]
Series = Mapping[str, Sequence[tuple[float, float]]]


def read_log(path: str | Path) -> list[dict]:
    """The records of a run's ``log.jsonl`` (a run folder or the file); lines cut short by a crash are skipped."""
    path = Path(path)
    if path.is_dir():
        path = path / "log.jsonl"
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def loss_series(records: Sequence[dict]) -> dict[str, list[tuple[float, float]]]:
    """``phase/name`` losses per step (learning rates, evaluations, throughput and counters left out)."""
    series: dict[str, list[tuple[float, float]]] = {}
    for r in records:
        for k, v in r.items():
            if "/" in k and not k.startswith(("lr/", "eval/")) and isinstance(v, (int, float)) and math.isfinite(v):
                series.setdefault(k, []).append((float(r["step"]), float(v)))
    return series


def eval_series(records: Sequence[dict]) -> dict[str, list[tuple[float, float]]]:
    """The training-time evaluation scores per step (``eval/SCORE`` and its ``eval/SCORE_floor``), without the
    evaluation's own bookkeeping (``eval/n``, ``eval/seconds``).

    :param records: the records of ``log.jsonl``.
    """
    series: dict[str, list[tuple[float, float]]] = {}
    for r in records:
        for k, v in r.items():
            if (
                k.startswith("eval/")
                and k not in ("eval/n", "eval/seconds")
                and isinstance(v, (int, float))
                and not isinstance(v, bool)
                and math.isfinite(v)
            ):
                series.setdefault(k[len("eval/") :], []).append((float(r["step"]), float(v)))
    return series


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.ceil(lo / step) * step
    return [start + i * step for i in range(int((hi - start) / step + 1e-9) + 1)]


def _fmt(v: float) -> str:
    return f"{v:.3g}" if abs(v) < 1e4 else f"{v:.2e}"


def plot_series(
    series: Series, title: str = "", width: int = 720, height: int = 400, xlabel: str = "step"
) -> Image.Image:
    """One panel with a line per series, axes with round ticks, and a legend."""
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default()
    left, right, top, bottom = 60, width - 170, 28, height - 36
    points = [p for pts in series.values() for p in pts]
    if title:
        draw.text((left, 8), title, fill="black", font=font)
    if not points:
        draw.text((left, height // 2), "no data", fill="black", font=font)
        return img
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y0, y1 = min(ys), max(ys)
    pad = (y1 - y0) * 0.05 or abs(y0) * 0.05 or 1.0
    y0, y1 = y0 - pad, y1 + pad

    def to_px(x: float, y: float) -> tuple[float, float]:
        return left + (x - x0) / (x1 - x0) * (right - left), bottom - (y - y0) / (y1 - y0) * (bottom - top)

    draw.rectangle([left, top, right, bottom], outline=(120, 120, 120))
    for t in _ticks(y0, y1):
        _, py = to_px(x0, t)
        draw.line([left, py, right, py], fill=(232, 232, 232))
        draw.text((4, py - 6), _fmt(t), fill="black", font=font)
    for t in _ticks(x0, x1):
        px, _ = to_px(t, y0)
        draw.line([px, bottom, px, bottom + 4], fill="black")
        draw.text((px - 12, bottom + 6), _fmt(t), fill="black", font=font)
    draw.text(((left + right) // 2 - 10, height - 14), xlabel, fill="black", font=font)
    for i, (name, pts) in enumerate(series.items()):
        colour = COLOURS[i % len(COLOURS)]
        px = [to_px(x, y) for x, y in sorted(pts)]
        if len(px) == 1:
            (a, b) = px[0]
            draw.ellipse([a - 2, b - 2, a + 2, b + 2], fill=colour)
        elif px:
            draw.line(px, fill=colour, width=2)
        ly = top + 4 + 16 * i
        draw.line([right + 10, ly + 6, right + 30, ly + 6], fill=colour, width=3)
        draw.text((right + 36, ly), name, fill="black", font=font)
    return img


def plot_losses(run: str | Path, out: str | Path | None = None, title: str | None = None) -> Path:
    """Draw the losses of a run folder (its ``log.jsonl``) into ``out`` (default ``RUN/losses.png``); a run with
    training-time evaluations (``--eval-every``) gets a second panel below with their scores.

    :param run: the run folder or its ``log.jsonl``.
    :param out: the PNG to write.
    :param title: the losses panel's title.
    :returns: the path written.
    """
    run = Path(run)
    records = read_log(run)
    out = Path(out) if out is not None else (run if run.is_dir() else run.parent) / "losses.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    img = plot_series(loss_series(records), title if title is not None else f"losses: {run.name}")
    evals = eval_series(records)
    if evals:
        metric = next((r["eval/metric"] for r in records if "eval/metric" in r), "headline metric")
        panel = plot_series(evals, f"evaluation during training ({metric}, EMA model; _floor: real vs real)")
        both = Image.new("RGB", (img.width, img.height + panel.height), "white")
        both.paste(img, (0, 0))
        both.paste(panel, (0, img.height))
        img = both
    img.save(out)
    return out
