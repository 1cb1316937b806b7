"""An independent judge of ``shapes-captions`` scenes: a scene-attribute classifier the project trains itself.

A text-to-image model trained on ``shapes-captions`` is scored by a network that had no part in its training: a
small CNN with one softmax head per attribute of :data:`ganzoo.data.captions.ATTR_NAMES` (shape count, then
colour, shape, size and place of each object), trained on real images of an evaluator-only data seed
(:data:`EVALUATOR_DATA_SEED`) until every attribute reaches :attr:`SceneRecipe.target` held-out accuracy or the
step cap. From it come:

- **R-precision**: each generated image ranks its caption among 100 (1 true + 99 captions of *other* scenes) by
  the classifier's log-likelihood of the attributes each caption states (:func:`caption_scores`).
- **attribute accuracy**: what the classifier reads from each generated image against what its caption says.

Trained files are cached in ``$GANZOO_CACHE/scenes`` (default ``~/.cache/ganzoo/scenes``) under a key naming the
image size, channels and training recipe, with their held-out accuracy in the metadata; a classifier whose mean
held-out accuracy is below a floor refuses to score.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganzoo.data.captions import ATTR_CLASSES, ATTR_NAMES, ShapesCaptionsDataset, parse_caption
from ganzoo.errors import ConfigError, GanzooError
from ganzoo.metrics.domain import load_cached_tensors, weights_digest
from ganzoo.utils.download import cache_dir, sha256_file

__all__ = [
    "DEFAULT_MIN_ACCURACY",
    "DEFAULT_RECIPE",
    "EVALUATOR_DATA_SEED",
    "SceneAttributeClassifier",
    "SceneClassifier",
    "SceneClassifierError",
    "SceneRecipe",
    "attribute_accuracy",
    "caption_attrs",
    "caption_scores",
    "draw_distractors",
    "get_scene_classifier",
    "scene_cache_path",
    "scene_r_precision",
    "train_scene_classifier",
]

# The data seed of the classifier's training and held-out scenes. Users train generators with small seeds (0 by
# default); this prime is kept away from them so the judge never saw the scenes of a generator's training run.
EVALUATOR_DATA_SEED = 7_919
FORMAT_SCENES = "ganzoo.scene-classifier/1"
# Bump when the network, the targets or the training loop change, so stale cache files are never reused.
RECIPE_VERSION = 1
# A classifier below this mean held-out accuracy refuses to score: the R-precision ceiling would fall with it.
DEFAULT_MIN_ACCURACY = 0.97


class SceneClassifierError(GanzooError):
    """The scene-attribute classifier cannot give trustworthy scores (too inaccurate, or the wrong images)."""


class SceneAttributeClassifier(nn.Module):
    """A small CNN with one softmax head per attribute of :data:`ATTR_NAMES`: four 3x3 conv blocks (the last three
    strided), a 4x4 adaptive pooling that keeps where things are, and a 256-unit layer.

    :param channels: image channels (1 or 3).
    :param width: channels of the first block (doubled, then quadrupled).
    """

    def __init__(self, channels: int = 3, width: int = 32) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        ch = channels
        for i, out in enumerate((width, width * 2, width * 4, width * 4)):
            layers += [nn.Conv2d(ch, out, 3, 1 if i == 0 else 2, 1, bias=False), nn.BatchNorm2d(out), nn.ReLU(True)]
            ch = out
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(4), nn.Flatten())
        self.fc = nn.Sequential(nn.Linear(ch * 16, 256), nn.ReLU(True), nn.Linear(256, sum(ATTR_CLASSES)))

    @staticmethod
    def prepare(images: Tensor) -> Tensor:
        """uint8 0..255 or float [-1, 1] images -> float [-1, 1]; floats are rounded to 8-bit levels first, so
        generated images go through the pipeline of the uint8 data the classifier learnt from.

        :param images: ``(B, C, H, W)``.
        """
        if images.dtype == torch.uint8:
            return images.float() / 127.5 - 1
        return ((images.float() + 1) * 127.5).clamp(0, 255).round() / 127.5 - 1

    def forward(self, x: Tensor) -> list[Tensor]:
        """Logits per attribute: a list of ``(B, ATTR_CLASSES[j])``.

        :param x: prepared ``[-1, 1]`` images.
        """
        return list(self.fc(self.features(x)).split(ATTR_CLASSES, dim=1))


def targets_of(attrs: Tensor) -> Tensor:
    """Class targets of scene attributes: count 1/2 becomes class 0/1, absent attributes stay -1 (ignored).

    :param attrs: ``int64 (B, 9)``.
    """
    t = attrs.clone()
    t[:, 0] = t[:, 0] - 1
    return t


@dataclass(frozen=True)
class SceneRecipe:
    """How the classifier is trained: Adam on fresh train-split scenes of :attr:`data_seed` every step, the
    learning rate decaying from :attr:`lr` to :attr:`lr_final` over :attr:`max_steps` (cosine); every
    :attr:`check_every` steps the accuracy on :attr:`val_items` val-split scenes, stopping once every attribute
    reaches :attr:`target`."""

    batch_size: int = 64
    lr: float = 1e-3
    lr_final: float = 5e-5
    max_steps: int = 4000
    check_every: int = 125
    target: float = 0.995
    val_items: int = 2000
    width: int = 32
    data_seed: int = EVALUATOR_DATA_SEED
    init_seed: int = 0

    def as_dict(self) -> dict[str, Any]:
        """The recipe and :data:`RECIPE_VERSION`, as stored in the cache key and the file's metadata."""
        return {**asdict(self), "recipe_version": RECIPE_VERSION}


DEFAULT_RECIPE = SceneRecipe()


def scene_cache_path(image_size: int, channels: int, recipe: SceneRecipe = DEFAULT_RECIPE) -> Path:
    """Where the classifier for this image size and channel count is cached:
    ``$GANZOO_CACHE/scenes/shapes-captions-{size}px-{channels}ch-{digest}.safetensors``, the digest over the size,
    channels and :meth:`SceneRecipe.as_dict`.

    :param image_size: side of the images it reads.
    :param channels: their channels.
    :param recipe: the training recipe.
    """
    blob = json.dumps({"size": image_size, "channels": channels, **recipe.as_dict()}, sort_keys=True)
    digest = hashlib.sha256(blob.encode()).hexdigest()[:12]
    return cache_dir() / "scenes" / f"shapes-captions-{image_size}px-{channels}ch-{digest}.safetensors"


def _batch(ds: ShapesCaptionsDataset, start: int, count: int) -> tuple[Tensor, Tensor]:
    items = ds.__getitems__(list(range(start, start + count)))
    images = torch.stack([it["image"] for it in items])
    return SceneAttributeClassifier.prepare(images), torch.stack([it["attrs"] for it in items])


@torch.no_grad()
def _predict(net: nn.Module, x: Tensor, chunk: int = 500) -> Tensor:
    """Predicted attribute vectors ``int64 (B, 9)`` (count as 1/2) of prepared images."""
    parts = []
    for i in range(0, len(x), chunk):
        parts.append(torch.stack([o.argmax(1) for o in net(x[i : i + chunk])], 1))
    pred = torch.cat(parts)
    pred[:, 0] += 1
    return pred


def attribute_accuracy(pred: Tensor, attrs: Tensor) -> dict[str, float]:
    """Accuracy per attribute of :data:`ATTR_NAMES` (over the scenes where it exists), their ``mean``, and
    ``all_correct`` (every attribute of the scene right).

    :param pred: predicted attributes ``(B, 9)``.
    :param attrs: true attributes ``(B, 9)``, -1 where absent.
    """
    out: dict[str, float] = {}
    for j, name in enumerate(ATTR_NAMES):
        present = attrs[:, j] >= 0
        out[name] = float((pred[present, j] == attrs[present, j]).double().mean()) if present.any() else math.nan
    out["mean"] = sum(out[n] for n in ATTR_NAMES) / len(ATTR_NAMES)
    out["all_correct"] = float(((pred == attrs) | (attrs < 0)).all(1).double().mean())
    return out


def train_scene_classifier(
    image_size: int,
    channels: int,
    recipe: SceneRecipe = DEFAULT_RECIPE,
    log: Callable[[str], None] | None = None,
    progress: bool = False,
) -> tuple[SceneAttributeClassifier, dict[str, Any]]:
    """Train the classifier on fresh ``shapes-captions`` train scenes of ``recipe.data_seed`` until every attribute
    reaches ``recipe.target`` on the val split of that seed, or ``recipe.max_steps``.

    :param image_size: side of the images.
    :param channels: 1 or 3.
    :param recipe: the training recipe.
    :param log: receives a line per accuracy check.
    :param progress: show a progress bar on stderr.
    :returns: the network (eval mode) and its metadata: steps, seconds, per-attribute held-out accuracy.
    """
    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    train = ShapesCaptionsDataset(image_size, channels, "train", recipe.data_seed)
    val = ShapesCaptionsDataset(image_size, channels, "val", recipe.data_seed, vocab=train.vocab)
    x_val, a_val = _batch(val, 0, min(recipe.val_items, len(val)))
    torch.manual_seed(recipe.init_seed)
    net = SceneAttributeClassifier(channels, recipe.width)
    opt = torch.optim.Adam(net.parameters(), lr=recipe.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=recipe.max_steps, eta_min=recipe.lr_final)
    acc: dict[str, float] = {}
    step = 0
    bar = tqdm(total=recipe.max_steps, desc="scene classifier", unit="step", file=sys.stderr, disable=not progress)
    with bar, torch.enable_grad():  # callers score under no_grad; training here must not inherit it
        while step < recipe.max_steps:
            net.train()
            # Item k of the train split is scene k % 10,000 with jitter drawn from k: every step sees new images.
            x, attrs = _batch(train, step * recipe.batch_size, recipe.batch_size)
            t = targets_of(attrs)
            logits = net(x)
            loss = sum(F.cross_entropy(o, t[:, j], ignore_index=-1) for j, o in enumerate(logits))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            bar.update(1)
            if step % recipe.check_every == 0 or step == recipe.max_steps:
                net.eval()
                acc = attribute_accuracy(_predict(net, x_val), a_val)
                worst = min(ATTR_NAMES, key=lambda n: acc[n])
                if log is not None:
                    log(
                        f"scene classifier step {step}: held-out mean {acc['mean']:.4f}, lowest {worst} "
                        f"{acc[worst]:.4f} (target {recipe.target} each)"
                    )
                if all(acc[n] >= recipe.target for n in ATTR_NAMES):
                    break
    net.eval()
    meta = {
        "data": "shapes-captions",
        "image_size": image_size,
        "channels": channels,
        "steps": step,
        "converged": all(acc[n] >= recipe.target for n in ATTR_NAMES),
        "val_accuracy": {n: acc[n] for n in ATTR_NAMES},
        "val_mean_accuracy": acc["mean"],
        "val_all_correct": acc["all_correct"],
        "train_seconds": round(time.perf_counter() - t0, 2),
        "recipe": recipe.as_dict(),
    }
    return net, meta


class SceneClassifier:
    """A trained :class:`SceneAttributeClassifier` with its metadata, weights hash and cache path."""

    def __init__(self, net: SceneAttributeClassifier, meta: dict[str, Any], sha256: str, path: Path | None) -> None:
        self.net = net.eval()
        self.meta = meta
        self.sha256 = sha256
        self.path = path

    def to(self, device: str | torch.device) -> SceneClassifier:
        """Move the network to ``device``.

        :param device: where it runs.
        :returns: self.
        """
        self.net.to(device)
        return self

    @property
    def accuracy(self) -> float:
        """Mean held-out accuracy over the attributes."""
        return float(self.meta["val_mean_accuracy"])

    @property
    def provenance(self) -> dict[str, Any]:
        """What identifies the judge: its training data and recipe, weights hash and held-out accuracy."""
        m = self.meta
        return {
            "extractor": f"ganzoo scene-attribute classifier (shapes-captions data seed {m['recipe']['data_seed']}, "
            f"{m['image_size']}px, {m['channels']}ch; {m['steps']} steps)",
            "weights_sha256": self.sha256,
            "resize": "none (trained at the model's image size)",
            "quantize_uint8": True,
            "test_accuracy": round(self.accuracy, 4),
            "val_accuracy": {k: round(v, 4) for k, v in m["val_accuracy"].items()},
            "converged": m["converged"],
            "train_seconds": m["train_seconds"],
            "recipe": m["recipe"],
            "path": str(self.path) if self.path else None,
        }

    def require(self, min_accuracy: float) -> SceneClassifier:
        """Raise :class:`SceneClassifierError` if the mean held-out accuracy is below ``min_accuracy``.

        :param min_accuracy: the floor.
        """
        if self.accuracy < min_accuracy:
            raise SceneClassifierError(
                f"scene classifier reached only {self.accuracy:.4f} mean held-out accuracy, below the required "
                f"{min_accuracy}; its scores would be meaningless (remove {self.path} to retrain)"
            )
        return self

    @torch.no_grad()
    def log_probs(self, images: Tensor, chunk: int = 500) -> list[Tensor]:
        """Log-probabilities per attribute, a list of ``(B, ATTR_CLASSES[j])``.

        :param images: uint8 or ``[-1, 1]`` images of the classifier's size and channels.
        :param chunk: images per forward pass.
        """
        m = self.meta
        if images.ndim != 4 or images.shape[1] != m["channels"] or images.shape[-1] != m["image_size"]:
            raise SceneClassifierError(
                f"the scene classifier reads {m['channels']}x{m['image_size']}x{m['image_size']} images, got "
                f"{tuple(images.shape[1:])}"
            )
        dev = next(self.net.parameters()).device
        parts = []
        for i in range(0, len(images), chunk):
            x = SceneAttributeClassifier.prepare(images[i : i + chunk].to(dev))
            parts.append([o.log_softmax(1).float().cpu() for o in self.net(x)])
        return [torch.cat([p[j] for p in parts]) for j in range(len(ATTR_NAMES))]

    @torch.no_grad()
    def predict(self, images: Tensor) -> Tensor:
        """Predicted attributes ``int64 (B, 9)`` (count as 1 or 2).

        :param images: uint8 or ``[-1, 1]`` images.
        """
        pred = torch.stack([lp.argmax(1) for lp in self.log_probs(images)], 1)
        pred[:, 0] += 1
        return pred


def get_scene_classifier(
    image_size: int,
    channels: int,
    *,
    recipe: SceneRecipe | None = None,
    min_accuracy: float | None = DEFAULT_MIN_ACCURACY,
    cache: bool = True,
    log: Callable[[str], None] | None = None,
    progress: bool = False,
) -> SceneClassifier:
    """The cached classifier for ``image_size`` / ``channels``, training (and caching) it if needed.

    :param image_size: side of the images it reads.
    :param channels: 1 or 3.
    :param recipe: the training recipe (default :data:`DEFAULT_RECIPE`).
    :param min_accuracy: refuse a classifier below this mean held-out accuracy (``None``: no check).
    :param cache: read and write ``$GANZOO_CACHE/scenes``.
    :param log: receives what is happening (training, a damaged cache file).
    :param progress: show a progress bar while training.
    :raises SceneClassifierError: when the classifier is below ``min_accuracy``.
    """
    from ganzoo.train.checkpoint import save_tensors

    if channels not in (1, 3):
        raise ConfigError(f"scene classifier: unsupported channels {channels}; valid: 1, 3")
    recipe = recipe or DEFAULT_RECIPE
    path = scene_cache_path(image_size, channels, recipe)
    tensors, meta = load_cached_tensors(path, FORMAT_SCENES, log) if cache else ({}, {})
    if meta:
        info = meta["ganzoo.scenes"]
        net = SceneAttributeClassifier(channels, int(info["recipe"]["width"]))
        net.load_state_dict(tensors)
        clf = SceneClassifier(net, info, sha256_file(path), path)
    else:
        if log is not None:
            log(
                f"training the scene-attribute classifier ({image_size}px, {channels}ch, data seed "
                f"{recipe.data_seed}, up to {recipe.max_steps} steps); cached for later evaluations"
            )
        net, info = train_scene_classifier(image_size, channels, recipe, log, progress)
        tensors = {k: v.detach() for k, v in net.state_dict().items()}
        if cache:
            save_tensors(path, tensors, {"ganzoo.scenes": info}, FORMAT_SCENES)
            clf = SceneClassifier(net, info, sha256_file(path), path)
        else:
            clf = SceneClassifier(net, info, weights_digest(tensors), None)
        if log is not None:
            log(
                f"scene classifier: held-out mean accuracy {clf.accuracy:.4f} after {info['steps']} steps in "
                f"{info['train_seconds']} s, saved to {clf.path}"
            )
    if min_accuracy is not None:
        clf.require(min_accuracy)
    return clf


# ---- scoring captions --------------------------------------------------------------------------------------------


def caption_attrs(captions: Sequence[str]) -> Tensor:
    """The attributes each caption states, ``int64 (B, 9)`` (see :func:`ganzoo.data.captions.parse_caption`).

    :param captions: ``shapes-captions`` phrasings.
    :raises ConfigError: naming the first caption that is not one.
    """
    rows = []
    for c in captions:
        attrs = parse_caption(c)
        if attrs is None:
            raise ConfigError(f"caption {c!r} is not a shapes-captions phrasing; the scene evaluator reads only those")
        rows.append(attrs)
    return torch.tensor(rows, dtype=torch.int64).reshape(-1, len(ATTR_NAMES))


def caption_scores(log_probs: list[Tensor], attrs: Tensor) -> Tensor:
    """Log-likelihood of every caption's attributes under every image's predictions, ``(B, M)`` float64: the sum,
    over the attributes caption ``m`` states, of image ``b``'s log-probability of the stated value.

    :param log_probs: per attribute ``(B, K_j)``, from :meth:`SceneClassifier.log_probs`.
    :param attrs: the captions' attributes ``(M, 9)`` (-1 where not stated).
    """
    t = targets_of(attrs)
    total = torch.zeros(log_probs[0].shape[0], len(t), dtype=torch.float64)
    for j, lp in enumerate(log_probs):
        stated = t[:, j] >= 0
        total += lp.to(torch.float64)[:, t[:, j].clamp_min(0)] * stated.to(torch.float64)[None, :]
    return total


def draw_distractors(true_attrs: Tensor, pool_attrs: Tensor, count: int, generator: torch.Generator) -> Tensor:
    """For every row of ``true_attrs``, ``count`` indices into the pool drawn uniformly without replacement among
    the captions whose attributes differ from it (a rephrasing of the same scene is never a distractor).

    :param true_attrs: ``(N, 9)``.
    :param pool_attrs: ``(M, 9)``.
    :param count: distractors per row.
    :param generator: draws them.
    :returns: ``int64 (N, count)``.
    :raises ConfigError: when some row has fewer than ``count`` eligible captions.
    """
    eligible = (true_attrs[:, None, :] != pool_attrs[None, :, :]).any(2)
    short = int(eligible.sum(1).min()) if len(true_attrs) else count
    if short < count:
        raise ConfigError(
            f"R-precision draws {count} distractors per image; the caption pool has only {short} of other scenes"
        )
    keys = torch.rand(eligible.shape, generator=generator, dtype=torch.float64)
    keys[~eligible] = 2.0  # beyond every uniform key, never among the smallest
    return keys.topk(count, dim=1, largest=False).indices


def scene_r_precision(
    log_probs: list[Tensor], true_attrs: Tensor, pool_attrs: Tensor, generator: torch.Generator, candidates: int = 100
) -> float:
    """Top-1 retrieval of the true caption among ``candidates`` (1 true + ``candidates - 1`` distractors of other
    scenes) by :func:`caption_scores`; a hit is the true caption scoring strictly above every distractor, so ties
    count as misses.

    :param log_probs: the images' per-attribute log-probabilities.
    :param true_attrs: the attributes of each image's caption ``(N, 9)``.
    :param pool_attrs: the attributes of the candidate pool ``(M, 9)``.
    :param generator: draws the distractors.
    :param candidates: captions ranked per image.
    :returns: the fraction of hits in [0, 1].
    """
    true_score = caption_scores(log_probs, true_attrs).diagonal()
    pool_score = caption_scores(log_probs, pool_attrs)
    picks = draw_distractors(true_attrs, pool_attrs, candidates - 1, generator)
    best = pool_score.gather(1, picks).max(1).values
    return float((true_score > best).double().mean())
