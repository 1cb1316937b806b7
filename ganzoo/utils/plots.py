"""Training curves drawn with Pillow (no plotting library needed): a run's ``log.jsonl`` -> one PNG.

The picture has one panel per network phase (the ``d/...``, ``g/...`` losses of a step: the prefix before the
``/`` is the phase that logged them), a series whose values live on another scale than its phase's loss (SRGAN's
pretraining PSNR beside its MSE) in a panel of its own, and one panel per quality score recorded during training
(``--eval-every``: ``eval/SCORE`` with its real-vs-real ``SCORE_floor``). All panels share the step axis and mark
where a training stage begins (``log.jsonl`` records each line's ``stage``). Loss curves are drawn raw (faint) and
smoothed by an exponential moving average (bold); colours are distinct within a panel.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

from PIL import Image, ImageDraw, ImageFont

# Tableau's ten colours, then five darker ones: distinct on white and from each other.
COLOURS = [
    (31, 119, 180),
    (214, 39, 40),
    (44, 160, 44),
    (255, 127, 14),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
    (0, 60, 120),
    (120, 0, 0),
    (0, 90, 0),
    (150, 70, 0),
    (80, 0, 110),
]
Series = Mapping[str, Sequence[tuple[float, float]]]
SCALE_GAP = 10.0  # a series this many times larger than its phase's loss (typically) gets its own panel


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)  # a scalable font where Pillow has FreeType
    except (TypeError, OSError, ImportError):
        return ImageFont.load_default()


def read_log(path: str | Path) -> list[dict]:
    """The records of a run's ``log.jsonl`` (a run folder or the file); lines cut short by a crash are skipped.

    :param path: the run folder or its ``log.jsonl``.
    :returns: one dict per complete line.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "log.jsonl"
    records = []
    # A line that is not UTF-8 is as unreadable as one cut short: replaced characters make it fail to parse.
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict) and isinstance(rec.get("step"), (int, float)):
            records.append(rec)
    return records


def training_evals(records: Sequence[Mapping]) -> list[dict]:
    """The training-time evaluations (``--eval-every``) among ``records``, in order: ``{"step", "metric", "n",
    "scores": {name: value}, "floors": {name: real-vs-real value}}`` each (``eval/NAME`` and ``eval/NAME_floor``).

    :param records: the records of ``log.jsonl`` (:func:`read_log`).
    """
    out = []
    for r in records:
        if "eval/metric" not in r:
            continue
        evals = {k[len("eval/") :]: v for k, v in r.items() if k.startswith("eval/")}
        scores = {k: v for k, v in evals.items() if k not in ("metric", "n", "seconds") and not k.endswith("_floor")}
        floors = {k[: -len("_floor")]: v for k, v in evals.items() if k.endswith("_floor")}
        out.append(
            {"step": r["step"], "metric": r["eval/metric"], "n": r.get("eval/n"), "scores": scores, "floors": floors}
        )
    return out


def _number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def loss_series(records: Sequence[dict]) -> dict[str, list[tuple[float, float]]]:
    """``phase/name`` values per step (learning rates, evaluations, throughput and counters left out).

    :param records: the records of ``log.jsonl``.
    :returns: name -> ``(step, value)`` pairs in log order.
    """
    series: dict[str, list[tuple[float, float]]] = {}
    for r in records:
        for k, v in r.items():
            if "/" in k and not k.startswith(("lr/", "eval/")) and _number(v):
                series.setdefault(k, []).append((float(r["step"]), float(v)))
    return series


def eval_series(records: Sequence[dict]) -> dict[str, list[tuple[float, float]]]:
    """The training-time evaluation scores per step (``eval/SCORE`` and its ``eval/SCORE_floor``), without the
    evaluation's own bookkeeping (``eval/n``, ``eval/seconds``).

    :param records: the records of ``log.jsonl``.
    :returns: score name (without ``eval/``) -> ``(step, value)`` pairs.
    """
    series: dict[str, list[tuple[float, float]]] = {}
    for r in records:
        for k, v in r.items():
            if k.startswith("eval/") and k not in ("eval/n", "eval/seconds") and _number(v):
                series.setdefault(k[len("eval/") :], []).append((float(r["step"]), float(v)))
    return series


def stage_spans(records: Sequence[dict]) -> list[tuple[str, float, float]]:
    """The training stages in the order they ran, each as ``(name, first logged step, last logged step)``.

    :param records: the records of ``log.jsonl`` (lines without a ``stage``, such as evaluations, are skipped).
    :returns: one entry per run of consecutive lines of one stage.
    """
    spans: list[tuple[str, float, float]] = []
    for r in records:
        stage = r.get("stage")
        if not isinstance(stage, str):
            continue
        step = float(r["step"])
        if spans and spans[-1][0] == stage:
            spans[-1] = (stage, spans[-1][1], step)
        else:
            spans.append((stage, step, step))
    return spans


def smooth(values: Sequence[float], span: int | None = None) -> list[float]:
    """An exponential moving average with its start-up bias removed (the first values are not pulled toward 0).

    :param values: the raw values in step order.
    :param span: the EMA span in points (weight ``2 / (span + 1)``); default: 1/15 of the points, at least 3.
    :returns: the smoothed values, one per input.
    """
    span = span or max(3, len(values) // 15)
    alpha = 2.0 / (span + 1)
    out, acc, weight = [], 0.0, 0.0
    for v in values:
        acc = (1 - alpha) * acc + alpha * v
        weight = (1 - alpha) * weight + alpha
        out.append(acc / weight)
    return out


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.ceil(lo / step) * step
    return [start + i * step for i in range(int((hi - start) / step + 1e-9) + 1)]


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    return f"{v:.3g}" if 1e-3 <= abs(v) < 1e5 else f"{v:.1e}"


def _faint(colour: tuple[int, int, int], keep: float = 0.3) -> tuple[int, int, int]:
    r, g, b = colour
    return (round(r * keep + 255 * (1 - keep)), round(g * keep + 255 * (1 - keep)), round(b * keep + 255 * (1 - keep)))


def _limits(series: Series, smoothed: Mapping[str, Sequence[float]]) -> tuple[float, float]:
    """The value range to show: every smoothed value, and the raw ones without the top and bottom 1% of a long
    series (a first-steps spike would flatten the rest of the curve; clipped points stay at the border)."""
    values: list[float] = []
    for name, pts in series.items():
        raw = sorted(v for _, v in pts)
        cut = len(raw) // 100 if len(raw) >= 100 else 0
        values += raw[cut : len(raw) - cut] if cut else raw
        values += list(smoothed.get(name, ()))
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.06 or abs(lo) * 0.06 or 1.0
    return lo - pad, hi + pad


def _vertical_text(img: Image.Image, xy: tuple[int, int], text: str, font: ImageFont.ImageFont) -> None:
    box = ImageDraw.Draw(img).textbbox((0, 0), text, font=font)
    label = Image.new("RGB", (box[2] + 2, box[3] + 2), "white")
    ImageDraw.Draw(label).text((1, 0), text, fill="black", font=font)
    rotated = label.rotate(90, expand=True)
    img.paste(rotated, (xy[0], xy[1] - rotated.height // 2))


def plot_series(
    series: Series,
    title: str = "",
    width: int = 720,
    height: int = 400,
    xlabel: str = "step",
    ylabel: str = "",
    colours: Sequence[tuple[int, int, int]] | None = None,
    xrange: tuple[float, float] | None = None,
    stages: Sequence[tuple[str, float, float]] = (),
    smoothing: bool = True,
    markers: bool = False,
) -> Image.Image:
    """One panel: a line per series with a legend, axes with round ticks and labels, stage boundaries marked.

    :param series: name -> ``(step, value)`` pairs.
    :param title: the panel's title.
    :param width: the panel's width in pixels.
    :param height: the panel's height in pixels.
    :param xlabel: the horizontal axis label.
    :param ylabel: the vertical axis label.
    :param colours: one colour per series (default: the palette in order).
    :param xrange: the steps the axis spans (default: those of ``series``); panels of one run share it.
    :param stages: ``(name, first step, last step)`` per stage (:func:`stage_spans`): a dashed line where each
        stage after the first begins, and the stage names along the top.
    :param smoothing: draw each series raw (faint) and EMA-smoothed (bold) when it has 10 points or more.
    :param markers: mark every point (for sparse series such as evaluations).
    :returns: the panel as an RGB image.
    """
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    font, small = _font(14), _font(12)
    left, right, top, bottom = 74, width - 160, 30, height - 42
    if title:
        draw.text((left, 8), title, fill="black", font=font)
    points = [p for pts in series.values() for p in pts]
    if not points:
        draw.text((left, height // 2), "no data", fill="black", font=font)
        return img
    colours = list(colours) if colours else [COLOURS[i % len(COLOURS)] for i in range(len(series))]
    xs = [p[0] for p in points]
    x0, x1 = xrange if xrange else (min(xs), max(xs))
    if x1 <= x0:
        x1 = x0 + 1
    ordered = {name: sorted(pts) for name, pts in series.items()}
    smoothed = {name: smooth([v for _, v in pts]) for name, pts in ordered.items() if smoothing and len(pts) >= 10}
    y0, y1 = _limits(ordered, smoothed)

    def to_px(x: float, y: float) -> tuple[float, float]:
        y = min(max(y, y0), y1)
        return left + (x - x0) / (x1 - x0) * (right - left), bottom - (y - y0) / (y1 - y0) * (bottom - top)

    for t in _ticks(y0, y1):
        _, py = to_px(x0, t)
        draw.line([left, py, right, py], fill=(235, 235, 235))
        label = _fmt(t)
        w = draw.textlength(label, font=small)
        draw.text((left - 6 - w, py - 7), label, fill="black", font=small)
    for t in _ticks(x0, x1):
        px, _ = to_px(t, y0)
        draw.line([px, bottom, px, bottom + 4], fill="black")
        label = _fmt(t)
        draw.text((px - draw.textlength(label, font=small) / 2, bottom + 6), label, fill="black", font=small)
    draw.text(
        ((left + right) / 2 - draw.textlength(xlabel, font=font) / 2, height - 19), xlabel, fill="black", font=font
    )
    if ylabel:
        _vertical_text(img, (4, (top + bottom) // 2), ylabel, small)
    for i, (name, start, _) in enumerate(stages):
        px, _ = to_px(start, y0)
        if i > 0:
            # The boundary lies after the previous stage's last logged step.
            px, _ = to_px(stages[i - 1][2], y0)
            for yy in range(top, bottom, 8):
                draw.line([px, yy, px, min(yy + 4, bottom)], fill=(90, 90, 90), width=1)
        if len(stages) > 1 and left <= px < right:
            draw.text((px + 4, top + 2), name, fill=(90, 90, 90), font=small)
    for colour, (name, pts) in zip(colours, ordered.items()):
        px = [to_px(x, y) for x, y in pts]
        bold = name in smoothed
        if len(px) == 1:
            a, b = px[0]
            draw.ellipse([a - 3, b - 3, a + 3, b + 3], fill=colour)
        elif px:
            draw.line(px, fill=_faint(colour) if bold else colour, width=1 if bold else 2)
        if bold:
            draw.line([to_px(x, y) for (x, _), y in zip(pts, smoothed[name])], fill=colour, width=2)
        if markers:
            for a, b in px:
                draw.ellipse([a - 3, b - 3, a + 3, b + 3], fill=colour)
    draw.rectangle([left, top, right, bottom], outline=(120, 120, 120))
    for i, (colour, name) in enumerate(zip(colours, ordered)):
        ly = top + 4 + 18 * i
        if ly > bottom - 10:
            draw.text((right + 10, ly), f"... {len(ordered) - i} more", fill="black", font=small)
            break
        draw.line([right + 10, ly + 7, right + 30, ly + 7], fill=colour, width=3)
        text = name
        while draw.textlength(text, font=small) > width - right - 40 and len(text) > 4:
            text = text[:-4] + "..."
        draw.text((right + 36, ly), text, fill="black", font=small)
    return img


class Panel(NamedTuple):
    """One panel of :func:`plot_run`.

    :param title: its heading.
    :param series: name -> ``(step, value)`` pairs.
    :param ylabel: the vertical axis label.
    :param evaluation: whether it shows a training-time evaluation score (drawn with markers, not smoothed).
    """

    title: str
    series: dict[str, list[tuple[float, float]]]
    ylabel: str
    evaluation: bool


def plot_panels(records: Sequence[dict]) -> list[Panel]:
    """The panels of a run's picture: one per phase, one for each series far larger than its phase's loss, one per
    evaluation score (with its floor).

    :param records: the records of ``log.jsonl``.
    :returns: the panels in drawing order.
    """
    stage_of: dict[str, list[str]] = {}
    for r in records:
        for k in r:
            phase = k.split("/")[0]
            if "/" in k and isinstance(r.get("stage"), str) and r["stage"] not in stage_of.setdefault(phase, []):
                stage_of[phase].append(r["stage"])
    groups: dict[str, dict[str, list[tuple[float, float]]]] = {}
    for name, pts in loss_series(records).items():
        groups.setdefault(name.split("/")[0], {})[name] = pts
    panels = []
    for phase, series in groups.items():
        ref_name = f"{phase}/loss" if f"{phase}/loss" in series else next(iter(series))
        ref = _typical(series[ref_name])
        apart = {n: s for n, s in series.items() if n != ref_name and _typical(s) > SCALE_GAP * max(ref, 1e-6)}
        stages = stage_of.get(phase, [])
        where = f" (stage {', '.join(stages)})" if stages else ""
        panels.append(
            Panel(f"phase {phase}{where}", {n: s for n, s in series.items() if n not in apart}, "loss", False)
        )
        for n, s in apart.items():
            panels.append(Panel(f"{n}{where}", {n: s}, n.split("/", 1)[1], False))
    evals = eval_series(records)
    metric = next((r["eval/metric"] for r in records if isinstance(r.get("eval/metric"), str)), "")
    for name in [n for n in evals if not n.endswith("_floor")]:
        series = {name: evals[name]}
        if f"{name}_floor" in evals:
            series[f"{name}_floor"] = evals[f"{name}_floor"]
        how = f"{metric} evaluation" if metric and metric != name else "evaluation"
        floor = "; floor: real vs real" if f"{name}_floor" in evals else ""
        panels.append(Panel(f"{name} ({how} of the EMA model{floor})", series, name, True))
    return panels


def _typical(pts: Sequence[tuple[float, float]]) -> float:
    values = sorted(abs(v) for _, v in pts)
    return values[len(values) // 2] if values else 0.0


def plot_run(records: Sequence[dict], title: str = "") -> Image.Image:
    """The picture of a run's curves (see the module documentation).

    :param records: the records of its ``log.jsonl`` (:func:`read_log`).
    :param title: a heading over the panels.
    :returns: the RGB image; a log without curves gives one panel saying "no data".
    """
    panels = plot_panels(records)
    if not panels:
        return plot_series({}, title)
    steps = [float(r["step"]) for r in records]
    xrange = (min(0.0, min(steps)), max(steps))
    stages = stage_spans(records)
    cols = 1 if len(panels) <= 2 else 2
    width, height = (760, 320) if cols == 1 else (640, 290)
    drawn, used = [], 0
    for name, series, ylabel, is_eval in panels:
        colours = [COLOURS[(used + i) % len(COLOURS)] for i in range(len(series))]
        used += len(series)
        drawn.append(
            plot_series(
                series,
                name,
                width,
                height,
                ylabel=ylabel,
                colours=colours,
                xrange=xrange,
                stages=stages,
                smoothing=not is_eval,
                markers=is_eval,
            )
        )
    head = 34
    rows = math.ceil(len(drawn) / cols)
    img = Image.new("RGB", (cols * width, head + rows * height), "white")
    draw = ImageDraw.Draw(img)
    note = "faint: logged values, bold: smoothed (EMA)" + ("; dashed: a new stage begins" if len(stages) > 1 else "")
    draw.text((12, 8), title, fill="black", font=_font(16))
    draw.text((cols * width - 12 - draw.textlength(note, font=_font(12)), 12), note, fill=(90, 90, 90), font=_font(12))
    for i, panel in enumerate(drawn):
        img.paste(panel, ((i % cols) * width, head + (i // cols) * height))
    return img


def plot_losses(run: str | Path, out: str | Path | None = None, title: str | None = None) -> Path:
    """Draw the curves of a run folder (its ``log.jsonl``) into ``out`` (default ``RUN/losses.png``): what
    ``ganzoo plot`` draws and what training leaves beside its log.

    :param run: the run folder or its ``log.jsonl``.
    :param out: the PNG to write.
    :param title: the heading (default: the run folder's name).
    :returns: the path written.
    """
    run = Path(run)
    records = read_log(run)
    folder = run if run.is_dir() else run.parent
    out = Path(out) if out is not None else folder / "losses.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    plot_run(records, title if title is not None else f"training curves: {folder.name}").save(out)
    return out
