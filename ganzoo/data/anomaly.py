"""Datasets of the ``anomaly`` task: items ``{"image": uint8 C x H x W, "label": int64}``, 0 normal, 1 anomalous.

Training splits hold normal items only; ``val`` and ``test`` mix both. Three sources:

* ``mnist-anomaly:DIR``: the one-class MNIST protocol (one digit is the anomaly, the nine others are normal);
* ``shapes-anomaly``: procedural shape scenes, anomalous ones carrying a defect (scratch, missing chunk, blob);
* ``mvtec:DIR``: a folder layout ``train/good``, ``test/good``, ``test/<defect>`` (MVTec AD and the like).

The splits are deterministic: they depend on file order and a fixed rule, never on a seed, so a model calibrated
on ``val`` and scored on ``test`` always sees the same images.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch.utils.data import Dataset

from ganzoo.data.base import BatchDataset, DataError, DataRequest, no_arg, path_arg
from ganzoo.data.files import ImageTensorDataset, MnistDataset, check_channels, list_images, load_image
from ganzoo.data.procedural import ShapesDataset, check_split, counter_uniform, stream_key, wrap_indices

__all__ = [
    "DEFECTS",
    "FolderAnomalyDataset",
    "ImageTensorDataset",
    "ShapesAnomalyDataset",
    "VAL_EVERY",
    "mnist_anomaly_factory",
    "mnist_anomaly_split",
    "mvtec_factory",
    "register_datasets",
    "shapes_anomaly_factory",
]

_ANOMALY = ("anomaly",)

# The validation carve: every VAL_EVERY-th item (by position in its source) goes to ``val`` instead of ``train``.
VAL_EVERY = 10


# ------------------------------------------------------------------------------------------------------ MNIST


def _anomaly_class(request: DataRequest, num_classes: int = 10) -> int:
    value = request.options.get("anomaly_class", 0)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < num_classes:
        raise DataError(f"mnist-anomaly: anomaly_class {value!r} is not a digit; valid: 0..{num_classes - 1}")
    return value


def mnist_anomaly_split(
    train_labels: torch.Tensor, test_labels: torch.Tensor, anomaly: int, split: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Which images make ``split`` of the one-class protocol with digit ``anomaly`` as the anomaly class.

    Returns ``(train_rows, test_rows, labels)``: rows into MNIST train and MNIST test, and the 0/1 labels of the
    concatenation (train rows first).

    * ``test``: every normal digit of MNIST test plus every image of the anomaly digit, from train and test
      (the protocol of Akcay et al. 2018, exactly).
    * ``train``: the other nine digits of MNIST train, less the validation carve (every ``VAL_EVERY``-th image).
    * ``val``: the carve: normal MNIST-train images at positions ``i % VAL_EVERY == VAL_EVERY - 1`` plus the
      anomaly-digit images of MNIST train at the same positions. Those anomalies are also in ``test`` (the
      protocol puts all of them there), so a threshold chosen on ``val`` has seen ~8% of the test anomalies;
      threshold-free numbers (AUROC, AUPRC) are unaffected.
    """
    check_split(split)
    pos = torch.arange(len(train_labels))
    carved = pos % VAL_EVERY == VAL_EVERY - 1
    normal_tr = train_labels != anomaly
    empty = torch.zeros(0, dtype=torch.int64)
    if split == "train":
        rows = torch.nonzero(normal_tr & ~carved).flatten()
        return rows, empty, torch.zeros(len(rows), dtype=torch.int64)
    if split == "val":
        rows = torch.nonzero(carved).flatten()
        return rows, empty, (train_labels[rows] == anomaly).to(torch.int64)
    tr_rows = torch.nonzero(~normal_tr).flatten()
    te_rows = torch.arange(len(test_labels))
    labels = torch.cat([torch.ones(len(tr_rows), dtype=torch.int64), (test_labels == anomaly).to(torch.int64)])
    return tr_rows, te_rows, labels


def mnist_anomaly_factory(arg: str | None, request: DataRequest) -> Dataset:
    """``mnist-anomaly:DIR``: one-class MNIST; the anomaly digit is ``request.options["anomaly_class"]``."""
    root = path_arg("mnist-anomaly", arg, "mnist_dir")
    anomaly = _anomaly_class(request)
    split = check_split(request.split)
    # MnistDataset does the reading, checking and resizing; only the row selection is ours.
    train = MnistDataset(root, "train", request.image_size, 1)
    test = MnistDataset(root, "test", request.image_size, 1) if split == "test" else None
    tr_rows, te_rows, labels = mnist_anomaly_split(
        train.labels, test.labels if test is not None else torch.zeros(0, dtype=torch.int64), anomaly, split
    )
    parts = [train.images[tr_rows]] + ([test.images[te_rows]] if test is not None else [])
    ds = ImageTensorDataset(torch.cat(parts), labels, check_channels(request.channels, "mnist-anomaly"))
    ds.anomaly_class = anomaly
    return ds


# ----------------------------------------------------------------------------------------------------- shapes

DEFECTS = ("scratch", "missing_chunk", "blob")

# BT.601 luma, the weights ShapesDataset renders grayscale with.
_LUMA = torch.tensor([0.299, 0.587, 0.114])


class ShapesAnomalyDataset(BatchDataset):
    """Shape scenes of :class:`~ganzoo.data.procedural.ShapesDataset`; anomalous ones carry one defect.

    Defects (one per anomalous image, kind drawn uniformly):

    * ``scratch``: a thin anti-aliased line across the image, light on dark or dark on light;
    * ``missing_chunk``: a disc bitten out of the shape's edge, filled with the background colour;
    * ``blob``: a small disc of a mid-luma colour, which the renderer never uses (its colours are either dark,
      luma <= 0.3, or light, luma >= 0.62), so it is a "wrong colour" in colour and in grayscale alike.

    ``train`` is normal only (50,000 items per epoch, fresh scenes each epoch); ``val`` and ``test`` hold
    ``size`` items, a fraction ``anomaly_fraction`` of them anomalous. Everything is a function of
    ``(seed, split, k)``, as in the shapes dataset.
    """

    def __init__(
        self,
        image_size: int = 32,
        channels: int = 3,
        split: str = "train",
        seed: int = 0,
        size: int = 2000,
        anomaly_fraction: float = 0.5,
    ) -> None:
        self.split = check_split(split)
        self.shapes = ShapesDataset(image_size, channels, split, seed)
        self.image_size, self.channels = image_size, channels
        self.size = len(self.shapes) if split == "train" else size
        self.anomaly_fraction = 0.0 if split == "train" else anomaly_fraction
        self._key = stream_key("shapes-anomaly", seed, split)

    def __len__(self) -> int:
        return self.size

    def labels_of(self, indices: Sequence[int]) -> torch.Tensor:
        """0/1 labels of (virtual) indices without rendering; fixed per item so test labels never change."""
        _, items = wrap_indices(indices, len(self))
        u = counter_uniform(self._key, items, 1)[:, 0]
        return torch.from_numpy(u < self.anomaly_fraction).to(torch.int64)

    def __getitems__(self, indices: Sequence[int]) -> list[dict[str, torch.Tensor]]:
        raw, items = wrap_indices(indices, len(self))
        if not raw:
            return []
        # Evaluation splits map item k to the same scene every epoch; training draws new scenes from k itself.
        scene_ids = raw if self.split == "train" else items
        images = torch.stack([it["image"] for it in self.shapes.__getitems__(scene_ids)])
        labels = self.labels_of(raw)
        bad = torch.nonzero(labels).flatten()
        if len(bad):
            u = counter_uniform(self._key ^ 0x5DEECE66D, [scene_ids[i] for i in bad.tolist()], 8)
            images[bad] = self.add_defects(images[bad], torch.from_numpy(u).float())
        return [{"image": images[i], "label": labels[i]} for i in range(len(raw))]

    def add_defects(self, images: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """One defect per image of ``uint8 (N, C, S, S)`` from 8 uniforms each; returns new uint8 images."""
        n, c, s, _ = images.shape
        x = images.float()
        side = torch.arange(s, dtype=torch.float32) + 0.5
        gy, gx = side[None, :, None], side[None, None, :]
        # The border's median colour is the background (the shape keeps half a pixel off the frame).
        border = torch.cat([x[:, :, 0], x[:, :, -1], x[:, :, 1:-1, 0], x[:, :, 1:-1, -1]], dim=2)
        bg = border.median(dim=2).values  # (N, C)
        # The shape is where the image differs clearly from the background; its centroid and area place chunks.
        fg = ((x - bg[:, :, None, None]).abs().amax(1) > 40).float()  # (N, S, S)
        area = fg.sum((1, 2)).clamp_min(1.0)
        cy = (fg * gy).sum((1, 2)) / area
        cx = (fg * gx).sum((1, 2)) / area
        radius = (area / math.pi).sqrt()
        kind = (u[:, 0] * len(DEFECTS)).long().clamp_max(len(DEFECTS) - 1)
        cover = torch.zeros(n, s, s)
        colour = torch.zeros(n, c)

        # scratch: a segment through a random point, long and thin, in the luma opposite to the background.
        px, py = s * (0.25 + 0.5 * u[:, 1]), s * (0.25 + 0.5 * u[:, 2])
        ang = math.pi * u[:, 3]
        half = s * (0.25 + 0.15 * u[:, 4])
        dx, dy = torch.cos(ang)[:, None, None], torch.sin(ang)[:, None, None]
        rx, ry = gx - px[:, None, None], gy - py[:, None, None]
        t = (rx * dx + ry * dy).clamp(-half[:, None, None], half[:, None, None])
        dist = torch.hypot(rx - t * dx, ry - t * dy)
        width = max(1.0, s / 32)
        scratch = (width / 2 + 0.5 - dist).clamp(0, 1)
        bg_luma = bg.mean(1) if c == 1 else bg @ _LUMA
        scratch_colour = torch.where(bg_luma > 127, 20.0, 235.0)[:, None].expand(n, c)

        # missing chunk: a disc centred on the shape's edge, in a random direction from its centroid.
        a2 = 2 * math.pi * u[:, 5]
        ccx, ccy = cx + radius * torch.cos(a2), cy + radius * torch.sin(a2)
        cr = radius * (0.45 + 0.25 * u[:, 6])
        chunk = (cr[:, None, None] + 0.5 - torch.hypot(gx - ccx[:, None, None], gy - ccy[:, None, None])).clamp(0, 1)

        # blob: a disc anywhere, of a random hue scaled to luma 0.40-0.52 (a grey of that luma in grayscale).
        bx, by = s * (0.2 + 0.6 * u[:, 1]), s * (0.2 + 0.6 * u[:, 2])
        br = s * (0.08 + 0.06 * u[:, 4])
        blob = (br[:, None, None] + 0.5 - torch.hypot(gx - bx[:, None, None], gy - by[:, None, None])).clamp(0, 1)
        luma = 0.40 + 0.12 * u[:, 7]
        hue = torch.stack([u[:, 3], u[:, 5], u[:, 6]], 1) + 0.2
        hue = hue * (luma / (hue @ _LUMA))[:, None]
        blob_colour = (hue.clamp(0, 1) * 255) if c == 3 else (luma * 255)[:, None]

        for k, (cov, col) in enumerate(((scratch, scratch_colour), (chunk, bg), (blob, blob_colour))):
            sel = kind == k
            cover[sel], colour[sel] = cov[sel], col[sel]
        out = torch.lerp(x, colour[:, :, None, None].expand_as(x), cover[:, None])
        return out.round_().clamp_(0, 255).to(torch.uint8)


def shapes_anomaly_factory(arg: str | None, request: DataRequest) -> Dataset:
    """``shapes-anomaly``: procedural shapes, anomalies with a scratch, a missing chunk or a wrong-colour blob."""
    no_arg("shapes-anomaly", arg)
    size = int(request.options.get("eval_size", 2000))
    return ShapesAnomalyDataset(request.image_size, request.channels, request.split, request.seed, size=size)


# ----------------------------------------------------------------------------------------------------- folders


class FolderAnomalyDataset(Dataset):
    """An MVTec-AD-style folder: ``train/good``, ``test/good`` and ``test/<defect>`` (one folder per defect kind).

    Splits, by position in each folder's sorted file list (so they never change):

    * ``train``: ``train/good`` less every ``VAL_EVERY``-th image;
    * ``val``: those carved ``train/good`` images plus every 5th image of each ``test/*`` folder;
    * ``test``: the rest of ``test/*`` (disjoint from ``val``).

    Images are decoded lazily, resized (shorter side) and centre-cropped to ``image_size``.
    """

    def __init__(self, root: str | os.PathLike, split: str = "test", image_size: int = 32, channels: int = 3):
        self.root = Path(root)
        self.split = check_split(split)
        self.image_size, self.channels = image_size, check_channels(channels, "mvtec")
        for sub in ("train/good", "test"):
            if not (self.root / sub).is_dir():
                raise DataError(f"mvtec: {self.root / sub} not found; expected train/good, test/good, test/<defect>")
        files: list[Path] = []
        labels: list[int] = []
        if split in ("train", "val"):
            good = list_images(self.root / "train" / "good")
            keep = [i % VAL_EVERY == VAL_EVERY - 1 for i in range(len(good))]
            chosen = [f for f, k in zip(good, keep) if k == (split == "val")]
            files += chosen
            labels += [0] * len(chosen)
        if split in ("val", "test"):
            kinds = sorted(d.name for d in (self.root / "test").iterdir() if d.is_dir() and not d.name.startswith("."))
            if not kinds:
                raise DataError(f"mvtec: no defect folders in {self.root / 'test'}; expected test/good, test/<defect>")
            self.defect_kinds = [k for k in kinds if k != "good"]
            for kind in kinds:
                imgs = list_images(self.root / "test" / kind)
                chosen = [f for i, f in enumerate(imgs) if (i % 5 == 4) == (split == "val")]
                files += chosen
                labels += [0 if kind == "good" else 1] * len(chosen)
        if not files:
            raise DataError(f"mvtec: the {split} split of {self.root} holds no images")
        self.files = files
        self.labels = torch.tensor(labels, dtype=torch.int64)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        _, (item,) = wrap_indices([index], len(self))
        image = load_image(self.files[item], self.channels, self.image_size)
        return {"image": image, "label": self.labels[item].clone()}


def mvtec_factory(arg: str | None, request: DataRequest) -> Dataset:
    """``mvtec:DIR``: DIR/train/good, DIR/test/good, DIR/test/<defect>."""
    root = path_arg("mvtec", arg, "category (with train/good and test/)")
    return FolderAnomalyDataset(root, request.split, request.image_size, request.channels)


# ------------------------------------------------------------------------------------------------ registration


def register_datasets(register: Callable[..., None]) -> None:
    """Register the anomaly datasets through a ``ganzoo_register_datasets`` ``register`` callback."""
    register(
        "mnist-anomaly",
        mnist_anomaly_factory,
        tasks=_ANOMALY,
        help="mnist-anomaly:DIR, one-class MNIST (anomaly digit = the variant's anomaly_class; Akcay et al. protocol)",
    )
    register(
        "shapes-anomaly",
        shapes_anomaly_factory,
        tasks=_ANOMALY,
        help="procedural shapes; anomalies carry a scratch, a missing chunk or a wrong-colour blob; no download",
    )
    register(
        "mvtec",
        mvtec_factory,
        tasks=_ANOMALY,
        help="mvtec:DIR, folders train/good, test/good, test/<defect> (MVTec AD layout)",
    )
