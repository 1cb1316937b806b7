"""Data at hand: any registered dataset, built-in or file-backed, previewed as one picture (``ganzoo data show``)
or written out as plain files the inference commands read (``ganzoo data export``).

A dataset is opened from its data spec alone, without a variant: :func:`open_dataset` fills the
:class:`~ganzoo.data.base.DataRequest` a variant would (task, split, size, channels, seed, options) from the
command's arguments. Items are read through :func:`~ganzoo.data.base.get_items`, so the files hold exactly what a
model trained or scored on the spec sees (the ``test`` split by default: held-out data, no augmentation).

Layouts written by :func:`export_items`, one per task, each one a reader of ganzoo accepts back:

* unconditional images: ``NNNNN.png``, inside one subfolder per class (``DIR/<label>/``) when the data has labels:
  ``folder:DIR`` reads them back with the same classes; 2D points: ``points.csv`` (``x,y,label``);
* paired and unpaired translation: ``a/NNNNN.png`` and ``b/NNNNN.png`` (and any further image of an item, such as
  ``b_true``, in a folder of its name): ``translate MODEL DIR/a``;
* super-resolution: ``HR/NNNNN.png`` and ``LR_x{scale}/NNNNN.png``, the Set5/Set14 layout that ``sr-pairs:DIR``
  reads (``sr-eval MODEL --data sr-pairs:DIR``, ``upscale MODEL DIR/LR_x4``);
* text-to-image: ``NNNNN.png`` with its caption in ``NNNNN.txt``, what ``captions:DIR`` reads;
* anomaly detection: ``NNNNN_normal.png`` / ``NNNNN_anomalous.png`` and ``labels.csv`` (``file,label``, 1 =
  anomalous): ``score MODEL DIR``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from ..utils.images import SampleGrid
from .base import DataError, DataRequest, get_items

SPLITS = ("train", "val", "test")
DEFAULT_IMAGE_SIZE = 64
DEFAULT_SR_CROP = 96  # the HR crop super-resolution trains on; its LR side at x4 is 24


def parse_option_value(text: str) -> Any:
    """A ``--set key=value`` value for :attr:`DataRequest.options`: an int, a float, ``true``/``false``, or the text.

    :param text: the value as typed.
    :returns: the parsed value.
    """
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def open_dataset(
    spec: str,
    split: str = "test",
    image_size: int | None = None,
    channels: int = 3,
    seed: int = 0,
    options: dict[str, Any] | None = None,
) -> tuple[Dataset, str]:
    """The dataset a data spec names, built as a variant of its task would build it.

    :param spec: a data spec ``NAME[:ARG]`` (``shapes``, ``mnist:DIR``, ``sr-pairs:DIR`` ...).
    :param split: ``train``, ``val`` or ``test``.
    :param image_size: image side (the HR crop for super-resolution, 0 there for whole images); default 64, and 96
        for super-resolution.
    :param channels: 1 or 3.
    :param seed: seed of procedural generation and augmentation.
    :param options: the task options a variant would pass (``scale`` for super-resolution, ``anomaly_class`` ...).
    :returns: ``(dataset, task)``; the task is the first one the dataset is registered for.
    :raises DataError: for a bad split, channel count or size, or anything the dataset's factory refuses.
    :raises UnknownNameError: for a dataset name nobody registered, with the valid names.
    """
    from ..registry import get
    from ..train.data import parse_data_spec

    if split not in SPLITS:
        raise DataError(f"split {split!r} is not valid; use one of {', '.join(SPLITS)}")
    if channels not in (1, 3):
        raise DataError(f"channels {channels!r} is not valid; use 1 or 3")
    name, arg = parse_data_spec(spec)
    entry = get("dataset", name)
    task = entry.tasks[0] if entry.tasks else "unconditional"
    if image_size is None:
        image_size = DEFAULT_SR_CROP if task == "super_resolution" else DEFAULT_IMAGE_SIZE
    if image_size < 0 or (image_size == 0 and task != "super_resolution"):
        raise DataError(f"image size {image_size} is not valid; use a positive side in pixels")
    request = DataRequest(task, split, image_size, channels, seed, dict(options or {}))
    dataset = entry.obj(arg, request)
    if len(dataset) == 0:
        raise DataError(f"dataset {spec!r} ({split} split) is empty")
    return dataset, task


def take(dataset: Dataset, n: int, spread: bool = False) -> list[dict[str, Any]]:
    """``n`` items (fewer when the dataset is smaller), in one batch read: the first ones, or ones spread evenly over
    the dataset (data stored in class order, such as a one-class test split that lists its anomalies first, shows
    every class that way).

    :param dataset: a ganzoo dataset.
    :param n: how many, at least 1.
    :param spread: take items ``k * len // n`` instead of ``0 .. n-1``.
    :returns: the items.
    :raises DataError: when ``n`` is below 1.
    """
    if n < 1:
        raise DataError(f"-n must be >= 1, got {n}")
    size = len(dataset)
    n = min(n, size)
    return get_items(dataset, [k * size // n for k in range(n)] if spread else range(n))


def _is_image(x: Any) -> bool:
    return torch.is_tensor(x) and x.dtype == torch.uint8 and x.dim() == 3


def _is_point(x: Any) -> bool:
    return torch.is_tensor(x) and x.is_floating_point() and x.dim() == 1


def _pm1(x: Tensor) -> Tensor:
    return x.float().div(127.5).sub(1.0)


def _fit(img: Tensor, size: int) -> Tensor:
    """A uint8 image brought to ``size`` x ``size`` (shorter side, centre crop) so items of different sizes share a
    grid; images already that size are returned as they are."""
    if img.shape[1:] == (size, size):
        return img
    from .files import fit_image, image_to_tensor

    arr = img.permute(1, 2, 0).numpy()
    pil = Image.fromarray(arr[..., 0] if arr.shape[2] == 1 else arr)
    return image_to_tensor(fit_image(pil, size))


def _framed(img: Tensor, colour: tuple[int, int, int], width: int = 2) -> Tensor:
    """A uint8 image with a coloured frame (RGB; a grayscale image becomes RGB)."""
    out = img.expand(3, -1, -1).clone() if img.shape[0] == 1 else img.clone()
    c = torch.tensor(colour, dtype=torch.uint8)[:, None, None]
    out[:, :width], out[:, -width:], out[:, :, :width], out[:, :, -width:] = c, c, c, c
    return out


@dataclass
class Preview:
    """What ``ganzoo data show`` draws and prints.

    :param grid: the labelled picture (column names, a caption under each image, a title).
    :param legend: one line saying how to read it.
    :param notes: per-item text printed beside it (captions, labels), in grid order.
    """

    grid: SampleGrid
    legend: str
    notes: list[str] = field(default_factory=list)


def preview(
    items: list[dict[str, Any]], task: str, title: str = "", class_names: Sequence[str] | None = None
) -> Preview:
    """The picture of ``items`` that ``ganzoo data show`` saves: for points a scatter; for super-resolution the LR
    input (enlarged, nearest neighbour) beside the HR target; for translation an item's images side by side under
    their names; otherwise one image per item captioned with its label, anomaly verdict or caption.

    :param items: dataset items of ``task``.
    :param task: the task of their dataset.
    :param title: a line over the picture.
    :param class_names: the dataset's class names by label, shown instead of the label numbers.
    :returns: the :class:`Preview`.
    """
    from ..utils.images import scatter_image

    n = len(items)
    first = items[0]
    if _is_point(first.get("image")):
        points = torch.stack([it["image"] for it in items]).float()
        limit = float(points.abs().max()) * 1.25 or 1.0
        legend = f"{n} points (blue), axes from -{limit:.3g} to {limit:.3g}"
        return Preview(SampleGrid(scatter_image(points, limit)[None], title=title), legend)
    if task == "super_resolution":
        side = min(min(it["hr"].shape[1:]) for it in items)
        ups, hrs = [], []
        for it in items:
            hr, lr = it["hr"], it["lr"]
            scale = hr.shape[-1] // lr.shape[-1]
            # Nearest-neighbour enlargement shows the LR pixels the model sees, not a smoothed guess.
            ups.append(_fit(lr.repeat_interleave(scale, 1).repeat_interleave(scale, 2), side))
            hrs.append(_fit(hr, side))
        columns = [("LR input", _pm1(torch.stack(ups))), ("HR target", _pm1(torch.stack(hrs)))]
        grid = SampleGrid.of_columns(columns, title=title)
        return Preview(grid, "each item: the LR input (enlarged, nearest neighbour) | the HR target")
    image_keys = [k for k, v in first.items() if _is_image(v)]
    if task in ("paired", "unpaired") or len(image_keys) > 1:
        columns = [(k, _pm1(torch.stack([it[k] for it in items]))) for k in image_keys]
        return Preview(SampleGrid.of_columns(columns, title=title), f"each item: {' | '.join(image_keys)}")
    images = [it["image"] for it in items]
    side = min(min(im.shape[1:]) for im in images)
    images = [_fit(im, side) for im in images]
    if task == "text_to_image":
        captions = [str(it["caption"]) for it in items]
        grid = SampleGrid(_pm1(torch.stack(images)), captions=captions, title=title)
        return Preview(grid, "captions, in grid order:", [f"{i}: {c}" for i, c in enumerate(captions)])
    labels = [int(it["label"]) for it in items] if "label" in first else []
    if task == "anomaly":
        pics = [_framed(im, (220, 30, 30) if lab == 1 else (30, 170, 60)) for im, lab in zip(images, labels)]
        verdicts = ["anomalous" if lab == 1 else "normal" for lab in labels]
        grid = SampleGrid(_pm1(torch.stack(pics)), captions=verdicts, title=title)
        return Preview(grid, f"green frame: normal, red frame: anomalous ({verdicts.count('anomalous')} of {n})")
    if labels and min(labels) >= 0:
        names = list(class_names or ())
        shown = [names[x] if x < len(names) else f"label {x}" for x in labels]
        grid = SampleGrid(_pm1(torch.stack(images)), captions=shown, title=title)
        square = int(grid.ncol or 1)
        words = [f"{x} ({names[x]})" if x < len(names) and names[x] != str(x) else str(x) for x in labels]
        notes = [" ".join(words[i : i + square]) for i in range(0, n, square)]
        return Preview(grid, "labels, row by row:", notes)
    return Preview(SampleGrid(_pm1(torch.stack(images)), title=title), f"{n} images")


# ---- export -------------------------------------------------------------------------------------------------------


@dataclass
class Exported:
    """What :func:`export_items` wrote.

    :param folder: the export folder.
    :param files: every file written, in order.
    :param layout: one line describing the layout.
    :param inputs: the folder (or file) an inference command takes as input.
    :param spec: a data spec that trains on the export, when one reads it (``folder:DIR``, ``sr-pairs:DIR``).
    """

    folder: Path
    files: list[Path]
    layout: str
    inputs: Path
    spec: str | None = None


def check_target(folder: str | Path, force: bool = False) -> Path:
    """The export folder, refused when it is a file, or a folder that already holds something (unless ``force``).

    :param folder: where to export.
    :param force: allow a non-empty folder (files of the same name are replaced; others stay).
    :returns: the folder as a path.
    :raises DataError: naming the folder and ``--force``.
    """
    folder = Path(folder).expanduser()
    if folder.exists() and not folder.is_dir():
        raise DataError(f"{folder} exists and is not a folder; name a new or empty folder")
    if folder.is_dir() and any(folder.iterdir()) and not force:
        raise DataError(f"{folder} is not empty; name a new or empty folder, or pass --force to write into it")
    return folder


def _write_png(img: Tensor, path: Path) -> Path:
    arr = img.permute(1, 2, 0).contiguous().numpy()
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr[..., 0] if arr.shape[2] == 1 else arr, mode="L" if arr.shape[2] == 1 else "RGB").save(path)
    return path


def _write_text(text: str, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8", newline="\n")
    return path


def _csv(rows: list[list[Any]]) -> str:
    buf = io.StringIO(newline="")
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def export_items(
    items: list[dict[str, Any]],
    task: str,
    folder: str | Path,
    force: bool = False,
    class_names: Sequence[str] | None = None,
) -> Exported:
    """Write ``items`` as plain files in the layout of their task (see the module documentation).

    :param items: dataset items of ``task`` (:func:`take`).
    :param task: the task of their dataset.
    :param folder: the export folder, new or empty unless ``force``.
    :param force: write into a non-empty folder.
    :param class_names: the dataset's class names by label (an image folder's ``class_names``): the class
        subfolders take these names instead of the label numbers.
    :returns: what was written (:class:`Exported`).
    :raises DataError: for a non-empty folder without ``force``.
    """
    root = check_target(folder, force)
    root.mkdir(parents=True, exist_ok=True)
    names = [f"{i:05d}" for i in range(len(items))]
    files: list[Path] = []
    first = items[0]
    if _is_point(first.get("image")):
        rows: list[list[Any]] = [["x", "y", "label"]]
        for it in items:
            x, y = (float(v) for v in it["image"][:2])
            rows.append([f"{x:.9g}", f"{y:.9g}", int(it.get("label", -1))])
        path = _write_text(_csv(rows), root / "points.csv")
        return Exported(root, [path], "points.csv: one 2D point per row (x, y, label = mode)", path)
    if task == "super_resolution":
        scale = first["hr"].shape[-1] // first["lr"].shape[-1]
        lr_dir = f"LR_x{scale}"
        for name, it in zip(names, items):
            files.append(_write_png(it["hr"], root / "HR" / f"{name}.png"))
            files.append(_write_png(it["lr"], root / lr_dir / f"{name}.png"))
        layout = f"HR/ (targets) and {lr_dir}/ (inputs, x{scale} smaller), same file names"
        return Exported(root, files, layout, root / lr_dir, f"sr-pairs:{root}")
    image_keys = [k for k, v in first.items() if _is_image(v)]
    if task in ("paired", "unpaired") or len(image_keys) > 1:
        for name, it in zip(names, items):
            files += [_write_png(it[k], root / k / f"{name}.png") for k in image_keys]
        layout = (
            ", ".join(f"{k}/" for k in image_keys)
            + " with the same file names"
            + (" (pairs: same name, same scene)" if task == "paired" else "")
        )
        # No translation reader takes this layout (aligned: wants A|B files, unaligned: trainA/testA ...); each
        # folder alone reads back as folder:DIR/a.
        return Exported(root, files, layout, root / image_keys[0])
    if task == "text_to_image":
        for name, it in zip(names, items):
            files.append(_write_png(it["image"], root / f"{name}.png"))
            files.append(_write_text(str(it["caption"]).strip() + "\n", root / f"{name}.txt"))
        return Exported(root, files, "NNNNN.png with its caption in NNNNN.txt", root, f"captions:{root}")
    if task == "anomaly":
        rows = [["file", "label"]]
        for name, it in zip(names, items):
            label = int(it["label"])
            file = f"{name}_{'anomalous' if label == 1 else 'normal'}.png"
            files.append(_write_png(it["image"], root / file))
            rows.append([file, label])
        files.append(_write_text(_csv(rows), root / "labels.csv"))
        return Exported(root, files, "NNNNN_normal.png / NNNNN_anomalous.png, and labels.csv (1 = anomalous)", root)
    labels = [int(it["label"]) for it in items] if "label" in first else []
    if labels and min(labels) >= 0:
        width = len(str(max(labels)))
        named = bool(class_names) and max(labels) < len(class_names or ())
        for name, it, label in zip(names, items, labels):
            sub = class_names[label] if named and class_names else f"{label:0{width}d}"
            files.append(_write_png(it["image"], root / sub / f"{name}.png"))
        layout = f"one subfolder per class ({'its name' if named else 'the label, zero-padded'}), NNNNN.png in each"
    else:
        files = [_write_png(it["image"], root / f"{name}.png") for name, it in zip(names, items)]
        layout = "NNNNN.png"
    return Exported(root, files, layout, root, f"folder:{root}")


# What to run on an export, by command name; a command is suggested only when a plugin registered it for the task.
_NEXT = {
    "translate": "ganzoo translate MODEL {inputs} -o {folder}-translated",
    "upscale": "ganzoo upscale MODEL {inputs} -o {folder}-upscaled",
    "sr-eval": "ganzoo sr-eval MODEL --data {spec}",
    "score": "ganzoo score MODEL {inputs} --csv {folder}-scores.csv",
    "generate": 'ganzoo generate MODEL "{caption}" -o {folder}-generated.png',
}


def next_commands(exported: Exported, task: str, items: list[dict[str, Any]]) -> list[str]:
    """Commands to try on an export: the inference commands registered for ``task`` with the export as input,
    and training on the export where a data spec reads it back.

    :param exported: what :func:`export_items` wrote.
    :param task: the task of the exported data.
    :param items: the exported items (a caption to draw comes from the first).
    :returns: command lines, ``MODEL`` standing for a trained model of the task.
    """
    from ..registry import commands_for

    values = {
        "inputs": exported.inputs,
        "folder": exported.folder,
        "spec": exported.spec,
        "caption": str(items[0].get("caption", "")).replace('"', "'"),
    }
    hints = [_NEXT[e.name].format(**values) for e in commands_for(task) if e.name in _NEXT]
    if exported.spec and task != "super_resolution":
        hints.append(f"ganzoo train VARIANT --data {exported.spec}    # train on the exported files")
    elif exported.spec:
        hints.append(f"ganzoo train VARIANT --data sr-folder:{exported.folder / 'HR'}    # train on the exported files")
    return hints
