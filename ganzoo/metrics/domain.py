"""A domain classifier the project trains itself, for offline scores on labelled datasets (shapes, MNIST).

The standard FID network (Inception-v3 on ImageNet) knows nothing about 28-pixel digits or procedural shapes, and
is slow on a CPU. A small CNN trained on the dataset's own labels gives features and class probabilities that do
know the domain, in seconds. From it come:

- **FD-dom** and **KID-dom**: the Fréchet distance and KID formulas on its penultimate features. They are *not* FID
  or KID: the numbers depend on this network and its weights, are comparable only between runs that used the same
  classifier file (its sha256 is recorded), and never with published FID tables.
- **class coverage** (classes predicted at least once), **KL to uniform** of the predicted-class histogram, and a
  **domain Inception Score** ``exp(E KL(p(y|x) || p(y)))``.
- **Stacked MNIST** mode counting: each channel classified separately, 1,000 classes (VEEGAN, PacGAN).

The classifier is trained on the train split and scored on the held-out test split; the test accuracy is stored in
the weights file's metadata and a classifier below ``min_accuracy`` refuses to score (a weak classifier makes every
number here meaningless). Trained files are cached in ``$GANZOO_CACHE/domain`` (default ``~/.cache/ganzoo/domain``)
under a key naming the dataset, image size, channels and training recipe.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganzoo.data.base import DataRequest, get_items
from ganzoo.errors import GanzooError
from ganzoo.metrics.modes import class_histogram_stats, stacked_classes
from ganzoo.nn.blocks import MemoryFormatSwitch
from ganzoo.utils.download import cache_dir, sha256_file

__all__ = [
    "DOMAIN_DATASETS",
    "DEFAULT_MIN_ACCURACY",
    "DomainClassifier",
    "DomainClassifierError",
    "DomainNet",
    "domain_cache_path",
    "get_domain_classifier",
    "inception_score",
    "load_cached_tensors",
    "train_domain_classifier",
    "weights_digest",
]

# Datasets with labels and a held-out test split distinct from train, so a test accuracy means something.
DOMAIN_DATASETS = ("shapes", "mnist")
DEFAULT_MIN_ACCURACY = 0.95
FORMAT_DOMAIN = "ganzoo.domain-classifier/1"
# Bump when the network or the recipe changes, so stale cache files are never reused.
RECIPE_VERSION = 1
INPUT_SIZE = 32


class DomainClassifierError(GanzooError):
    """The domain classifier cannot give trustworthy scores (too inaccurate, or no labelled data)."""


class DomainNet(nn.Module):
    """A small CNN: three conv blocks on a 32x32 input, a 128-d penultimate layer, one logit per class.

    Inputs of any size are resized to 32x32 (antialiased bilinear), so one recipe serves 28-pixel digits and
    64-pixel shapes; ~100k parameters keep training on one CPU thread to seconds.
    """

    feature_dim = 128

    def __init__(self, channels: int, num_classes: int, width: int = 16) -> None:
        super().__init__()
        w = width

        def block(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
            )

        self.body = nn.Sequential(
            block(channels, w),
            nn.MaxPool2d(2),  # 16
            block(w, 2 * w),
            nn.MaxPool2d(2),  # 8
            block(2 * w, 4 * w),
            nn.MaxPool2d(2),  # 4
        )
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(4 * w * 16, self.feature_dim), nn.ReLU(inplace=True))
        self.head = nn.Linear(self.feature_dim, num_classes)

    @staticmethod
    def prepare(images: Tensor) -> Tensor:
        """uint8 0..255 or float [-1, 1] images -> float [-1, 1] at 32x32; floats are rounded to 8-bit levels first,
        so generated images go through the same pipeline as the uint8 data they are compared with."""
        if images.dtype == torch.uint8:
            x = images.float() / 127.5 - 1
        else:
            x = ((images.float() + 1) * 127.5).clamp(0, 255).round() / 127.5 - 1
        if tuple(x.shape[-2:]) != (INPUT_SIZE, INPUT_SIZE):
            x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", antialias=True, align_corners=False)
        return x

    def features(self, x: Tensor) -> Tensor:
        return self.fc(self.body(x))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


def _normalise_spec(spec: str) -> tuple[str, str | None, str]:
    """``"mnist:~/data"`` -> ("mnist", "/home/u/data", "mnist:/home/u/data"): paths made absolute for the key."""
    name, sep, arg = spec.strip().partition(":")
    name = name.lower()
    if sep and arg and name != "shapes":
        arg = str(Path(arg).expanduser().resolve())
    return name, (arg if sep else None), name + (f":{arg}" if sep else "")


@dataclass(frozen=True)
class _Recipe:
    train_items: int
    test_items: int
    epochs: int
    batch_size: int
    lr: float
    width: int
    seed: int

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "recipe_version": RECIPE_VERSION, "input_size": INPUT_SIZE}


DEFAULT_RECIPE = _Recipe(train_items=8_000, test_items=2_000, epochs=2, batch_size=128, lr=2e-3, width=16, seed=0)
# Digits need more data than shapes (8k x 2 epochs reached 0.974, 20k x 3 0.9845, 30k x 3 with batch 64 0.991 in
# ~30 s of CPU); Stacked MNIST counts 1,000 modes from three predictions per image, so per-digit errors compound.
RECIPES = {"mnist": _Recipe(train_items=30_000, test_items=2_000, epochs=3, batch_size=64, lr=2e-3, width=16, seed=0)}


def recipe_for(spec: str) -> _Recipe:
    """The training recipe used for a dataset spec."""
    return RECIPES.get(_normalise_spec(spec)[0], DEFAULT_RECIPE)


def domain_cache_path(spec: str, image_size: int, channels: int, recipe: _Recipe = DEFAULT_RECIPE) -> Path:
    """Where the classifier for ``spec`` at this image size and channel count is cached."""
    name, _, full = _normalise_spec(spec)
    blob = json.dumps({"spec": full, "size": image_size, "channels": channels, **recipe.as_dict()}, sort_keys=True)
    digest = hashlib.sha256(blob.encode()).hexdigest()[:12]
    return cache_dir() / "domain" / f"{name}-{image_size}px-{channels}ch-{digest}.safetensors"


def _check_supported(name: str) -> None:
    if name not in DOMAIN_DATASETS:
        raise DomainClassifierError(
            f"no domain classifier for dataset {name!r}: it needs labels and a held-out test split; "
            f"datasets with one: {', '.join(DOMAIN_DATASETS)}"
        )


def _build(spec: str, split: str, image_size: int, channels: int, seed: int) -> Any:
    from ganzoo import registry

    name, arg, _ = _normalise_spec(spec)
    _check_supported(name)
    entry = registry.get("dataset", name)
    return entry.obj(
        arg, DataRequest(task="unconditional", split=split, image_size=image_size, channels=channels, seed=seed)
    )


def _take(ds: Any, indices: list[int]) -> tuple[Tensor, Tensor]:
    items = get_items(ds, indices)
    return torch.stack([it["image"] for it in items]), torch.stack([torch.as_tensor(it["label"]) for it in items])


def _load_split(ds: Any, n: int, seed: int, chunk: int = 4096) -> tuple[Tensor, Tensor]:
    count = min(n, len(ds))
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(ds), generator=g)[:count].sort().values.tolist()
    parts = [_take(ds, idx[i : i + chunk]) for i in range(0, count, chunk)]
    images = torch.cat([p[0] for p in parts])
    labels = torch.cat([p[1] for p in parts]).long()
    return images, labels


class DomainClassifier(MemoryFormatSwitch):
    """A trained :class:`DomainNet` with what it was trained on and how well it scored on held-out data."""

    def __init__(self, net: DomainNet, meta: dict[str, Any], sha256: str, path: Path | None = None) -> None:
        self.net = net.eval()
        self.meta = meta
        self.sha256 = sha256
        self.path = path
        self.channels_last = False

    @property
    def accuracy(self) -> float:
        return float(self.meta["test_accuracy"])

    @property
    def num_classes(self) -> int:
        return int(self.meta["num_classes"])

    @property
    def channels(self) -> int:
        return int(self.meta["channels"])

    @property
    def provenance(self) -> dict[str, Any]:
        """Enough to tell whether two FD-dom numbers are comparable: same dataset key and same weights hash."""
        return {
            "extractor": f"ganzoo domain classifier ({self.meta['spec']}, {self.meta['image_size']}px, "
            f"{self.channels}ch; penultimate {DomainNet.feature_dim}-d features)",
            "weights_sha256": self.sha256,
            "test_accuracy": round(self.accuracy, 4),
            "test_items": self.meta["recipe"]["test_items"],
            "resize": f"bilinear antialiased to {INPUT_SIZE}x{INPUT_SIZE}",
            "quantize_uint8": True,
            "feature_dim": DomainNet.feature_dim,
            "path": str(self.path) if self.path else None,
        }

    def require(self, min_accuracy: float) -> DomainClassifier:
        """Raise :class:`DomainClassifierError` if the held-out accuracy is below ``min_accuracy``."""
        if self.accuracy < min_accuracy:
            raise DomainClassifierError(
                f"domain classifier for {self.meta['spec']} reached only {self.accuracy:.4f} test accuracy, below "
                f"the required {min_accuracy}; its scores would be meaningless (lower --min-domain-accuracy to "
                f"accept it, or remove {self.path} to retrain)"
            )
        return self

    def to(self, device: str | torch.device) -> DomainClassifier:
        self.net.to(device)
        return self

    @torch.no_grad()
    def features_and_probs(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """Penultimate features (B, 128) and softmax probabilities (B, K) of uint8 or [-1, 1] images."""
        dev = next(self.net.parameters()).device
        x = DomainNet.prepare(images.to(dev))
        x = self.in_format(x)
        if x.shape[1] != self.channels:
            raise DomainClassifierError(
                f"the domain classifier takes {self.channels}-channel images, got {x.shape[1]} channels"
            )
        f = self.net.features(x)
        return f, self.net.head(f).softmax(dim=1)

    @torch.no_grad()
    def predict(self, images: Tensor) -> Tensor:
        return self.features_and_probs(images)[1].argmax(dim=1)

    @torch.no_grad()
    def predict_stacked(self, images: Tensor) -> Tensor:
        """Stacked MNIST classes in [0, K^C): every channel of (B, C, H, W) classified as a grayscale image."""
        if self.channels != 1:
            raise DomainClassifierError("stacked classes need a classifier trained on 1-channel images")
        per = [self.predict(images[:, c : c + 1]) for c in range(images.shape[1])]
        return stacked_classes(torch.stack(per, dim=1), base=self.num_classes)


def inception_score(probs: Tensor, splits: int = 1) -> tuple[float, float]:
    """``exp(E_x KL(p(y|x) || p(y)))`` of class probabilities (N, K), mean and std over ``splits`` chunks.

    With the domain classifier this is a *domain* Inception Score: at most K, K for confident, evenly spread
    predictions; not comparable with the ImageNet Inception Score.
    """
    p = probs.to(torch.float64).clamp_min(1e-12)
    scores = []
    for part in p.chunk(splits):
        marginal = part.mean(dim=0, keepdim=True)
        scores.append(math.exp(float((part * (part.log() - marginal.log())).sum(dim=1).mean())))
    t = torch.tensor(scores, dtype=torch.float64)
    return float(t.mean()), float(t.std(correction=0)) if splits > 1 else 0.0


def class_scores(counts_or_preds: Tensor, num_classes: int) -> dict[str, float | int]:
    """Class coverage (fraction of classes predicted at least once) and KL(histogram || uniform)."""
    s = class_histogram_stats(counts_or_preds, num_classes)
    return {"classes": int(s["modes"]), "class_coverage": s["modes"] / num_classes, "class_kl": float(s["kl"])}


def _fit(
    net: DomainNet,
    opt: torch.optim.Optimizer,
    sched: Any,
    x: Tensor,
    y: Tensor,
    recipe: _Recipe,
    g: torch.Generator,
    spec: str,
    log: Callable[[str], None] | None,
) -> None:
    steps_per_epoch = math.ceil(len(x) / recipe.batch_size)
    for epoch in range(recipe.epochs):
        perm = torch.randperm(len(x), generator=g)
        for i in range(steps_per_epoch):
            idx = perm[i * recipe.batch_size : (i + 1) * recipe.batch_size]
            loss = F.cross_entropy(net(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        if log is not None:
            log(f"domain classifier {spec}: epoch {epoch + 1}/{recipe.epochs}, loss {loss.item():.4f}")


def train_domain_classifier(
    spec: str,
    image_size: int,
    channels: int,
    recipe: _Recipe = DEFAULT_RECIPE,
    log: Callable[[str], None] | None = None,
) -> tuple[DomainNet, dict[str, Any]]:
    """Train the classifier on ``recipe.train_items`` train-split items; measure accuracy on the test split."""
    t0 = time.perf_counter()
    train_ds = _build(spec, "train", image_size, channels, recipe.seed)
    test_ds = _build(spec, "test", image_size, channels, recipe.seed)
    num_classes = int(getattr(train_ds, "num_classes", 0))
    if num_classes < 2:
        raise DomainClassifierError(f"dataset {spec!r} has no class labels to train a domain classifier on")
    x_train, y_train = _load_split(train_ds, recipe.train_items, recipe.seed)
    x_test, y_test = _load_split(test_ds, recipe.test_items, recipe.seed + 1)
    # Resize once up front: the network would otherwise resize the same images every epoch.
    x_train = DomainNet.prepare(x_train)
    x_test = DomainNet.prepare(x_test)
    torch.manual_seed(recipe.seed)
    net = DomainNet(channels, num_classes, recipe.width)
    steps_per_epoch = math.ceil(len(x_train) / recipe.batch_size)
    total = steps_per_epoch * recipe.epochs
    opt = torch.optim.Adam(net.parameters(), lr=recipe.lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=recipe.lr, total_steps=total)
    g = torch.Generator().manual_seed(recipe.seed)
    net.train()
    with torch.enable_grad():  # callers often score under no_grad; training here must not inherit it
        _fit(net, opt, sched, x_train, y_train, recipe, g, spec, log)
    net.eval()
    with torch.no_grad():
        pred = torch.cat([net(x_test[i : i + 512]).argmax(1) for i in range(0, len(x_test), 512)])
    accuracy = float((pred == y_test).double().mean())
    _, _, full = _normalise_spec(spec)
    meta = {
        "spec": full,
        "image_size": image_size,
        "channels": channels,
        "num_classes": num_classes,
        "class_names": [str(c) for c in getattr(train_ds, "class_names", range(num_classes))],
        "test_accuracy": accuracy,
        "train_seconds": round(time.perf_counter() - t0, 2),
        "recipe": recipe.as_dict(),
    }
    return net, meta


def weights_digest(tensors: dict[str, Tensor]) -> str:
    """sha256 over the names and bytes of ``tensors``: the identity of weights that were not written to a file.

    :param tensors: name -> tensor.
    :returns: the hex digest.
    """
    h = hashlib.sha256()
    for k in sorted(tensors):
        h.update(k.encode())
        h.update(tensors[k].detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def load_cached_tensors(
    path: Path, fmt: str, log: Callable[[str], None] | None = None
) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """The tensors and metadata of a cached evaluator file, or ``({}, {})`` when it is absent or damaged.

    A damaged file (digest mismatch, truncated, another format, or written before files carried a digest) is
    reported through ``log`` and treated as absent, so the caller trains again and overwrites it.

    :param path: the cache file.
    :param fmt: its expected ganzoo format.
    :param log: receives the note about a damaged file.
    """
    from ganzoo.errors import CheckpointError
    from ganzoo.train.checkpoint import load_tensors

    if not path.is_file():
        return {}, {}
    try:
        return load_tensors(path, fmt)
    except CheckpointError as e:
        if log is not None:
            log(f"cached file unusable, training again: {e}")
        return {}, {}


def get_domain_classifier(
    spec: str,
    image_size: int,
    channels: int,
    *,
    min_accuracy: float | None = DEFAULT_MIN_ACCURACY,
    cache: bool = True,
    recipe: _Recipe | None = None,
    log: Callable[[str], None] | None = None,
) -> DomainClassifier:
    """The cached classifier for ``spec`` at ``image_size`` / ``channels``, training (and caching) it if needed.

    Raises :class:`DomainClassifierError` when its held-out accuracy is below ``min_accuracy`` (``None``: no check).
    """
    from ganzoo.train.checkpoint import save_tensors

    _check_supported(_normalise_spec(spec)[0])
    recipe = recipe or recipe_for(spec)
    path = domain_cache_path(spec, image_size, channels, recipe)
    clf: DomainClassifier | None = None
    tensors, meta = load_cached_tensors(path, FORMAT_DOMAIN, log) if cache else ({}, {})
    if meta:
        info = meta["ganzoo.domain"]
        net = DomainNet(int(info["channels"]), int(info["num_classes"]), int(info["recipe"]["width"]))
        net.load_state_dict(tensors)
        clf = DomainClassifier(net, info, sha256_file(path), path)
    if clf is None:
        if log is not None:
            log(f"training the domain classifier for {spec} ({image_size}px, {channels}ch) ...")
        net, info = train_domain_classifier(spec, image_size, channels, recipe, log)
        tensors = {k: v.detach() for k, v in net.state_dict().items()}
        saved = path if cache else None
        if cache:
            save_tensors(path, tensors, {"ganzoo.domain": info}, FORMAT_DOMAIN)
            digest = sha256_file(path)
        else:
            digest = weights_digest(tensors)
        clf = DomainClassifier(net, info, digest, saved)
        if log is not None:
            log(f"domain classifier: test accuracy {clf.accuracy:.4f} in {info['train_seconds']} s, saved to {saved}")
    if min_accuracy is not None:
        clf.require(min_accuracy)
    return clf
