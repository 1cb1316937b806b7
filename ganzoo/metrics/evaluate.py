"""One call that scores a model with its task's metric set: :func:`evaluate`.

Images are streamed in batches: features, per-image scores and class predictions are accumulated and the images
dropped, so N is bounded by time, not memory. Every score comes with its provenance (extractor and weights hash,
resizer, N, reference split, seed, versions), and generation scores always come with the real-vs-real floor at the
same N (two disjoint real splits scored exactly like the model), because FID-type numbers are biased in N and mean
little without it.

Per task (``model.task``):

- unconditional images: FID/KID/PRDC with the Inception-v3 FID network (skipped with a note when its weights are
  not found), FD-dom/KID-dom/PRDC-dom, class coverage, class KL and a domain Inception Score with the project's
  domain classifier (shapes, MNIST); the model's samples are compared with N train images, the floor is N test
  images against the same N train images.
- unconditional 2D points (ring8, grid25): the mode protocol of VEEGAN/PacGAN (modes, high-quality %, reverse KL).
- paired: PSNR/SSIM/L1 of ``generate(a=...)`` against ``b``; the identity mapping as a baseline.
- unpaired: with a hidden pairing (``b_true``), PSNR/SSIM against it and the identity baseline.
- super_resolution: Y-channel PSNR/SSIM with ``scale`` pixels shaved, and the PIL-bicubic baseline.
- anomaly: AUROC/AUPRC of ``model.score(images)`` on the test split.
- text_to_image: the model's own ``r_precision`` method when it has one.
"""

from __future__ import annotations

import datetime
import inspect
import math
import platform
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ganzoo.errors import ConfigError, GanzooError, UnknownNameError
from ganzoo.metrics.domain import (
    DEFAULT_MIN_ACCURACY,
    DOMAIN_DATASETS,
    DomainClassifier,
    DomainClassifierError,
    class_scores,
    get_domain_classifier,
    inception_score,
)
from ganzoo.metrics.frechet import FeatureStats, frechet_distance, kid, precision_recall_density_coverage
from ganzoo.metrics.image import l1_per_image, pm1_to_255, psnr_per_image, ssim_per_image
from ganzoo.metrics.modes import mode_stats
from ganzoo.metrics.ranking import auprc, auroc

__all__ = [
    "DEFAULT_N",
    "METRIC_GROUPS",
    "FeatureSet",
    "distribution_scores",
    "frechet_from_features",
    "evaluate",
    "load_inception",
    "metrics_path",
    "provenance_common",
]

Log = Callable[[str], None]

# Defaults sized for a CPU: FID on 1,000 images costs ~3,000 Inception forwards (model, train, test).
DEFAULT_N = {
    "unconditional": 1000,
    "points": 2500,
    "paired": 200,
    "unpaired": 200,
    "super_resolution": 100,
    "anomaly": 100_000,  # the whole test split
    "text_to_image": 1000,
}

# Metric groups per task; the first list is the default set.
METRIC_GROUPS: dict[str, tuple[str, ...]] = {
    "unconditional": ("fid", "kid", "prdc", "fd-dom", "kid-dom", "prdc-dom", "classes"),
    "points": ("modes-2d",),
    "paired": ("psnr", "ssim", "l1"),
    "unpaired": ("psnr", "ssim", "l1"),
    "super_resolution": ("psnr", "ssim"),
    "anomaly": ("auroc", "auprc"),
    "text_to_image": ("r-precision",),
}
_INCEPTION_GROUPS = {"fid", "kid", "prdc"}
_DOMAIN_GROUPS = {"fd-dom", "kid-dom", "prdc-dom", "classes"}


def _versions() -> dict[str, str]:
    from ganzoo import __version__

    return {"ganzoo": __version__, "torch": torch.__version__, "python": platform.python_version()}


def provenance_common(**extra: Any) -> dict[str, Any]:
    """Versions and the time of scoring, plus ``extra``."""
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()
    return {"versions": _versions(), "date_utc": now, **extra}


def load_inception(
    weights: str | None = None, resize: str = "tf-bilinear", device: str | torch.device = "cpu"
) -> tuple[Any, str | None]:
    """The FID extractor, or ``(None, reason)`` when its weights cannot be found offline."""
    from ganzoo.metrics.inception import InceptionFeatures

    try:
        return InceptionFeatures(weights, resize=resize, download=False).to(device), None
    except (FileNotFoundError, ValueError) as e:
        return None, f"FID/KID/PRDC skipped: Inception weights unavailable ({e})"


class FeatureSet:
    """Everything kept of one image set: Inception and domain feature statistics (with up to ``keep`` raw rows
    for KID and PRDC), and domain class probabilities."""

    def __init__(self, inception: Any = None, domain: DomainClassifier | None = None, keep: int = 10_000) -> None:
        self.inception = inception
        self.domain = domain
        self.incep = FeatureStats(max_keep=keep, keep_device="cpu")
        self.dom = FeatureStats(max_keep=keep, keep_device="cpu")
        self.probs: list[Tensor] = []
        self.num = 0

    @torch.no_grad()
    def update(self, images: Tensor) -> None:
        """Add a batch: uint8 0..255 or float [-1, 1] images (B, C, H, W)."""
        if self.inception is not None:
            dev = next(self.inception.parameters()).device
            self.incep.update(self.inception(images.to(dev)))
        if self.domain is not None:
            f, p = self.domain.features_and_probs(images)
            self.dom.update(f)
            self.probs.append(p.cpu())
        self.num += images.shape[0]


def frechet_from_features(fa: Tensor, fb: Tensor) -> float:
    """The Fréchet distance of two feature sets (N1, D), (N2, D) through their N x N cross product.

    With centred, scaled rows ``X = (A - mean) / sqrt(N1 - 1)`` and likewise ``Y``, the covariances are ``X^T X``
    and ``Y^T Y``; the non-zero eigenvalues of ``S1 S2 = X^T (X Y^T) Y`` are those of ``(X Y^T)(X Y^T)^T``, so
    ``tr((S1 S2)^(1/2))`` is the nuclear norm (sum of singular values) of the N1 x N2 matrix ``X Y^T``, and
    ``tr(S) = ||X||_F^2``. Exact, and much cheaper than two D x D eigendecompositions when N < D (2048-d
    Inception features of a few hundred images). Float64.
    """
    x = fa.reshape(fa.shape[0], -1).to(torch.float64)
    y = fb.reshape(fb.shape[0], -1).to(device=x.device, dtype=torch.float64)
    mx, my = x.mean(0), y.mean(0)
    xc = (x - mx) / math.sqrt(x.shape[0] - 1)
    yc = (y - my) / math.sqrt(y.shape[0] - 1)
    nuclear = torch.linalg.svdvals(xc @ yc.T).sum()
    diff = mx - my
    return float(diff @ diff + (xc * xc).sum() + (yc * yc).sum() - 2 * nuclear)


def _fd_kid_prdc(a: FeatureStats, b: FeatureStats, groups: set[str], names: tuple[str, str, str], seed: int) -> dict:
    out: dict[str, float] = {}
    fd, kd, pr = names
    fa, fb = a.features(), b.features()
    if fd in groups:
        whole = fa is not None and fb is not None and len(fa) == a.num and len(fb) == b.num
        if whole and max(a.num, b.num) < (a.dim or 0):
            out[fd.replace("-", "_")] = frechet_from_features(fa, fb)
        else:
            out[fd.replace("-", "_")] = frechet_distance(a.mean(), a.cov(), b.mean(), b.cov())
    if kd in groups and fa is not None and fb is not None:
        m, s = kid(fa, fb, subsets=100, subset_size=1000, generator=torch.Generator().manual_seed(seed))
        key = kd.replace("-", "_")
        out[key], out[key + "_std"] = m, s
    if pr in groups and fa is not None and fb is not None:
        k = 5 if min(len(fa), len(fb)) > 5 else max(1, min(len(fa), len(fb)) - 1)
        suffix = "" if pr == "prdc" else "_dom"
        for name, v in precision_recall_density_coverage(fb, fa, k=k).items():
            out[name + suffix] = v
    return out


def distribution_scores(ref: FeatureSet, other: FeatureSet, groups: set[str], seed: int = 0) -> dict[str, float]:
    """FID/KID/PRDC and their domain versions of ``other`` against ``ref`` (PRDC: ``ref`` is the real set)."""
    out: dict[str, float] = {}
    if ref.inception is not None and ref.incep.num > 1:
        out.update(_fd_kid_prdc(other.incep, ref.incep, groups, ("fid", "kid", "prdc"), seed))
    if ref.domain is not None and ref.dom.num > 1:
        out.update(_fd_kid_prdc(other.dom, ref.dom, groups, ("fd-dom", "kid-dom", "prdc-dom"), seed))
        if "classes" in groups and other.probs:
            probs = torch.cat(other.probs)
            out.update(class_scores(probs.argmax(dim=1), ref.domain.num_classes))
            out["is_dom"], _ = inception_score(probs)
    return out


# ---- data access -----------------------------------------------------------------------------------------------------


def _subset(n_total: int, n: int, seed: int) -> list[int]:
    g = torch.Generator().manual_seed(seed)
    return torch.randperm(n_total, generator=g)[: min(n, n_total)].sort().values.tolist()


def _items(ds: Any, indices: list[int]) -> list[dict[str, Any]]:
    return ds.__getitems__(indices) if hasattr(ds, "__getitems__") else [ds[i] for i in indices]


def iter_batches(ds: Any, indices: list[int], batch_size: int) -> Iterator[dict[str, Any]]:
    """Items of ``ds`` at ``indices``, ``batch_size`` at a time, collated; consecutive items of different sizes
    go into separate batches (test sets mix image sizes)."""
    from torch.utils.data import default_collate

    for start in range(0, len(indices), batch_size):
        items = _items(ds, indices[start : start + batch_size])
        group: list[dict[str, Any]] = []
        for it in items:
            if group and any(
                torch.is_tensor(v) and v.shape != group[0][k].shape for k, v in it.items() if k in group[0]
            ):
                yield default_collate(group)
                group = []
            group.append(it)
        if group:
            yield default_collate(group)


def iter_images(ds: Any, indices: list[int], batch_size: int, key: str = "image") -> Iterator[Tensor]:
    for batch in iter_batches(ds, indices, batch_size):
        yield batch[key]


def _pm1(x: Tensor, device: torch.device | str) -> Tensor:
    x = x.to(device)
    return x.float() / 127.5 - 1 if x.dtype == torch.uint8 else x.float()


def _build(spec: str, model: Any, split: str, data_seed: int) -> Any:
    from ganzoo.train.data import build_dataset

    return build_dataset(spec, model, split=split, seed=data_seed)


def _spec_name(spec: str) -> str:
    from ganzoo.train.data import parse_data_spec

    return parse_data_spec(spec)[0]


def _takes_seed(fn: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "seed" or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def _generate_noise_batches(model: Any, n: int, seed: int, batch_size: int) -> Iterator[Tensor]:
    with_seed = _takes_seed(model.generate)
    for i, start in enumerate(range(0, n, batch_size)):
        b = min(batch_size, n - start)
        # A distinct, reproducible seed per batch: the same seed for every batch would repeat the same samples.
        s = seed * 1_000_003 + i
        if with_seed:
            out = model.generate(n=b, seed=s)
        else:
            torch.manual_seed(s)
            out = model.generate(n=b)
        yield out.float()


# ---- per task --------------------------------------------------------------------------------------------------------


def _is_points(model: Any, spec: str) -> bool:
    return int(getattr(model, "image_size", 1) or 0) == 0 or _spec_name(spec) in ("ring8", "grid25")


def _eval_points(model: Any, spec: str, groups: set[str], n: int, seed: int, data_seed: int, res: dict) -> None:
    ds = _build(spec, model, "test", data_seed)
    centres, std = getattr(ds, "modes", None), getattr(ds, "std", None)
    if centres is None or std is None:
        raise ConfigError(f"data {spec!r} has no known modes (a `modes` and `std` attribute); modes-2d needs them")
    samples = torch.cat([b.cpu() for b in _generate_noise_batches(model, n, seed, max(n, 1))])
    if samples.ndim != 2 or samples.shape[1] != 2:
        raise ConfigError(f"modes-2d needs (N, 2) points; {model.name} generated {tuple(samples.shape)}")
    real = torch.cat(list(iter_images(ds, list(range(min(n, len(ds)))), 4096)))
    res["scores"].update(mode_stats(samples, centres, std))
    res["baselines"]["real_vs_real"] = mode_stats(real, centres, std)
    res["provenance"]["modes-2d"] = {
        "protocol": "VEEGAN/PacGAN: high quality = within 3 std of the nearest mode; reverse KL of the mode "
        "histogram of high-quality samples from uniform",
        "modes": int(centres.shape[0]),
        "std": float(std),
        "real_reference": f"{spec} test split, first {len(real)} points",
    }


def _eval_unconditional(
    model: Any,
    spec: str,
    groups: set[str],
    n: int,
    seed: int,
    data_seed: int,
    batch_size: int,
    device: str,
    inception_weights: str | None,
    min_domain_accuracy: float,
    explicit: bool,
    res: dict,
    log: Log | None,
) -> None:
    inception = None
    if groups & _INCEPTION_GROUPS:
        inception, why = load_inception(inception_weights, device=device)
        if inception is None:
            if explicit:
                raise GanzooError(why or "Inception weights unavailable")
            res["notes"].append(why)
        else:
            res["provenance"]["inception"] = inception.provenance
    domain = None
    if groups & _DOMAIN_GROUPS:
        name = _spec_name(spec)
        try:
            if name not in DOMAIN_DATASETS:
                raise DomainClassifierError(
                    f"no domain classifier for data {name!r} (datasets with one: {', '.join(DOMAIN_DATASETS)})"
                )
            domain = get_domain_classifier(
                spec, model.image_size, model.channels, min_accuracy=min_domain_accuracy, log=log
            ).to(device)
            res["provenance"]["domain"] = domain.provenance
        except DomainClassifierError as e:
            if explicit:
                raise
            res["notes"].append(f"domain metrics skipped: {e}")
    if inception is None and domain is None:
        res["notes"].append("no feature extractor available: nothing scored")
        return
    keep = n
    train_ds, test_ds = _build(spec, model, "train", data_seed), None
    split_note = "test"
    try:
        test_ds = _build(spec, model, "test", data_seed)
    except GanzooError:
        test_ds = None
    if test_ds is None or _spec_name(spec) == "folder":
        # One folder has no held-out split: the floor compares two disjoint halves of it.
        perm = _subset(len(train_ds), 2 * n, seed)
        ref_idx, floor_idx, floor_ds, split_note = perm[::2], perm[1::2], train_ds, "train (other half)"
    else:
        ref_idx, floor_idx, floor_ds = _subset(len(train_ds), n, seed), _subset(len(test_ds), n, seed + 1), test_ds
    ref, fake, floor = (FeatureSet(inception, domain, keep) for _ in range(3))
    t0 = time.perf_counter()
    total, last = len(ref_idx) + len(floor_idx) + n, [t0]

    def progress() -> None:
        # Inception on a CPU is ~0.3-1 s per image, so long runs say where they are every half minute.
        now = time.perf_counter()
        if log is not None and now - last[0] > 30:
            done = ref.num + floor.num + fake.num
            log(f"  {done}/{total} images scored, {now - t0:.0f} s")
            last[0] = now

    if log is not None and inception is not None:
        log(f"scoring {total} images (N={n} generated, train reference, test floor) with Inception on {device}")
    for imgs in iter_images(train_ds, ref_idx, batch_size):
        ref.update(imgs)
        progress()
    for imgs in iter_images(floor_ds, floor_idx, batch_size):
        floor.update(imgs)
        progress()
    for imgs in _generate_noise_batches(model, n, seed, batch_size):
        if imgs.ndim != 4:
            raise ConfigError(f"{model.name} generated {tuple(imgs.shape)}; image metrics need (B, C, H, W)")
        fake.update(imgs)
        progress()
    if log is not None:
        log(
            f"features of {ref.num} + {floor.num} real and {fake.num} generated images in "
            f"{time.perf_counter() - t0:.1f} s"
        )
    res["scores"].update(distribution_scores(ref, fake, groups, seed))
    res["baselines"]["real_vs_real"] = distribution_scores(ref, floor, groups, seed)
    res["reference"] = {
        "data": spec,
        "reference_split": f"train, {ref.num} items drawn with seed {seed}",
        "floor_split": f"{split_note}, {floor.num} items drawn with seed {seed + 1}",
        "generated": f"{fake.num} samples, noise seeds derived from {seed}",
    }
    if fake.num != n or ref.num < n:
        res["notes"].append(f"asked for N={n}; used {fake.num} generated and {ref.num} reference images")


def _image_rows(pred: Tensor, ref: Tensor, y_channel: bool = False, shave: int = 0) -> dict[str, Tensor]:
    p, r = pm1_to_255(pred.cpu()), pm1_to_255(ref.cpu())
    return {
        "psnr": psnr_per_image(p, r, y_channel=y_channel, shave=shave),
        "ssim": ssim_per_image(p, r, y_channel=y_channel, shave=shave),
        "l1": l1_per_image(p, r),
    }


def _mean_rows(rows: list[dict[str, Tensor]], groups: set[str]) -> dict[str, float]:
    out = {}
    for k in ("psnr", "ssim", "l1"):
        if k in groups and rows and all(k in r for r in rows):
            out[k] = float(torch.cat([r[k] for r in rows]).mean())
    return out


def _eval_translation(
    model: Any, spec: str, groups: set[str], n: int, data_seed: int, batch_size: int, device: str, res: dict
) -> None:
    ds = _build(spec, model, "test", data_seed)
    idx = list(range(min(n, len(ds))))
    first = _items(ds, idx[:1])[0]
    paired = str(model.task) == "paired"
    target = "b" if paired else "b_true"
    if target not in first:
        res["notes"].append(
            f"data {spec!r} has no hidden pairing (b_true): unpaired outputs have no ground truth to score"
        )
        return
    ours, ident = [], []
    for batch in iter_batches(ds, idx, batch_size):
        a = _pm1(batch["a"], device)
        b = _pm1(batch[target], device)
        ours.append(_image_rows(model.generate(a=a), b))
        if a.shape == b.shape:
            ident.append(_image_rows(a, b))
    res["scores"].update(_mean_rows(ours, groups))
    if ident:
        res["baselines"]["identity"] = _mean_rows(ident, groups)
    res["provenance"]["image"] = {
        "protocol": "8-bit RGB (outputs rounded from [-1, 1] to 0..255), PSNR peak 255, SSIM Gaussian 11x11 "
        "sigma 1.5 on every channel, mean over images",
        "reference": f"{spec} test split, items 0..{len(idx) - 1}, target {target!r}",
        "n": len(idx),
    }


def _bicubic(lr: Tensor, size: tuple[int, int]) -> Tensor:
    """PIL BICUBIC upsampling of uint8 (B, C, h, w) to (B, C, H, W): the SR papers' baseline."""
    import numpy as np
    from PIL import Image

    out = []
    for img in lr:
        arr = img.permute(1, 2, 0).cpu().numpy()
        pil = Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr)
        up = np.asarray(pil.resize((size[1], size[0]), Image.Resampling.BICUBIC))
        up = up[:, :, None] if up.ndim == 2 else up
        out.append(torch.from_numpy(up.copy()).permute(2, 0, 1))
    return torch.stack(out)


def _eval_sr(
    model: Any, spec: str, groups: set[str], n: int, data_seed: int, batch_size: int, device: str, res: dict
) -> None:
    scale = int(getattr(model.config, "scale", 4))
    ds = _build(spec, model, "test", data_seed)
    idx = list(range(min(n, len(ds))))
    ours, bic = [], []
    for batch in iter_batches(ds, idx, batch_size):
        lr, hr = batch["lr"], batch["hr"]
        pred = pm1_to_255(model.generate(lr=_pm1(lr, device)).cpu())
        hr255 = hr.to(torch.float64)
        up = _bicubic(lr.to(torch.uint8) if lr.dtype == torch.uint8 else pm1_to_255(lr).to(torch.uint8), hr.shape[-2:])
        # SSIM's 11x11 window needs 11 pixels left after the shave; tiny test crops do not have them.
        with_ssim = min(hr.shape[-2:]) - 2 * scale >= 11
        if not with_ssim and "ssim" in groups:
            small = f"SSIM skipped: {hr.shape[-1]}x{hr.shape[-2]} images less {scale} px per border are under 11x11"
            if small not in res["notes"]:
                res["notes"].append(small)
        for rows, p in ((ours, pred), (bic, up)):
            row = {"psnr": psnr_per_image(p, hr255, y_channel=True, shave=scale)}
            if with_ssim:
                row["ssim"] = ssim_per_image(p, hr255, y_channel=True, shave=scale)
            rows.append(row)
    res["scores"].update(_mean_rows(ours, groups))
    res["baselines"]["bicubic"] = _mean_rows(bic, groups)
    res["provenance"]["image"] = {
        "protocol": f"Y channel of ITU-R BT.601 YCbCr, {scale} px shaved off each border, peak 255, SSIM Gaussian "
        "11x11 sigma 1.5; bicubic = PIL BICUBIC upsampling of the uint8 LR",
        "reference": f"{spec} test split, items 0..{len(idx) - 1}",
        "scale": scale,
        "n": len(idx),
    }


def _eval_anomaly(
    model: Any, spec: str, groups: set[str], n: int, data_seed: int, batch_size: int, device: str, res: dict
) -> None:
    if not callable(getattr(model, "score", None)):
        raise ConfigError(f"{model.name} is an anomaly model without a score(images) method")
    ds = _build(spec, model, "test", data_seed)
    idx = list(range(min(n, len(ds))))
    scores, labels = [], []
    for batch in iter_batches(ds, idx, batch_size):
        scores.append(model.score(_pm1(batch["image"], device)).reshape(-1).float().cpu())
        labels.append(batch["label"].reshape(-1).cpu())
    s, y = torch.cat(scores), torch.cat(labels)
    if "auroc" in groups:
        res["scores"]["auroc"] = auroc(s, y)
    if "auprc" in groups:
        res["scores"]["auprc"] = auprc(s, y)
    res["baselines"]["chance"] = {"auroc": 0.5, "auprc": float(y.double().mean())}
    res["provenance"]["anomaly"] = {
        "protocol": "higher score = more anomalous; label 1 = anomalous; AUROC = Mann-Whitney with mid-ranks, "
        "AUPRC = step-wise average precision (scikit-learn's definitions)",
        "reference": f"{spec} test split, items 0..{len(idx) - 1} ({int(y.sum())} anomalous)",
        "n": len(idx),
    }


def _eval_text(model: Any, n: int, seed: int, res: dict) -> None:
    fn = getattr(model, "r_precision", None) or getattr(model, "evaluate_r_precision", None)
    if not callable(fn):
        res["notes"].append(
            f"{model.name} has no r_precision method: R-precision needs the model's own text and image encoders "
            "(see the variant's documentation for its evaluation script)"
        )
        return
    out = fn(n=n, seed=seed)
    if isinstance(out, dict):
        res["scores"].update({k: v for k, v in out.items() if isinstance(v, (int, float))})
        res["provenance"]["r-precision"] = {k: v for k, v in out.items() if not isinstance(v, (int, float))}
    else:
        res["scores"]["r_precision"] = float(out)


# ---- the entry point -------------------------------------------------------------------------------------------------


def _task_key(model: Any, spec: str) -> str:
    task = str(getattr(model, "task", "unconditional"))
    if task == "unconditional" and _is_points(model, spec):
        return "points"
    return task


def _resolve_groups(task: str, metrics: list[str] | str | None) -> tuple[set[str], bool]:
    valid = METRIC_GROUPS.get(task, ())
    if metrics is None:
        return set(valid), False
    asked = [m.strip().lower() for m in (metrics.split(",") if isinstance(metrics, str) else metrics) if m.strip()]
    for m in asked:
        if m not in valid:
            raise UnknownNameError(f"metric for {task} models", m, valid)
    return set(asked), True


def evaluate(
    model: Any,
    data: str | None = None,
    metrics: list[str] | str | None = None,
    n: int | None = None,
    seed: int = 0,
    device: str = "cpu",
    batch_size: int = 64,
    *,
    data_seed: int = 0,
    inception_weights: str | None = None,
    min_domain_accuracy: float = DEFAULT_MIN_ACCURACY,
    log: Log | None = None,
) -> dict[str, Any]:
    """Score ``model`` with its task's metric set; returns a JSON-serialisable dict.

    Args:
        model: a :class:`ganzoo.GANVariant` (e.g. from :func:`ganzoo.load`).
        data: data spec of the reference data (default: the model's own ``default_data``).
        metrics: metric groups (see ``METRIC_GROUPS``), default all of the task's. Asking explicitly for a metric
            that cannot be computed (no Inception weights, no accurate domain classifier) raises; by default such
            metrics are skipped with a note.
        n: sample count N (default per task, ``DEFAULT_N``); generated and real sets both have N items.
        seed: noise seed of the samples and the seed of the real subsets.
        data_seed: seed of the dataset streams (the training seed, 0 by default).
        min_domain_accuracy: the domain classifier refuses to score below this held-out accuracy.

    Returns:
        ``{"model", "variant", "task", "data", "n", "seed", "scores", "baselines", "notes", "provenance",
        "seconds"}``; ``scores`` are flat numbers, ``baselines`` maps a baseline name (``real_vs_real``,
        ``bicubic``, ``identity``, ``chance``) to the same keys.
    """
    t0 = time.perf_counter()
    spec = data or getattr(model, "default_data", None) or "shapes"
    task = _task_key(model, spec)
    groups, explicit = _resolve_groups(task, metrics)
    n = int(n if n is not None else DEFAULT_N.get(task, 1000))
    if n < 2:
        raise ConfigError(f"n must be >= 2, got {n}")
    was_training = getattr(model, "training", False)
    if isinstance(model, torch.nn.Module):
        model.eval().to(device)
    res: dict[str, Any] = {
        "model": getattr(model, "registered_name", getattr(model, "name", type(model).__name__)),
        "variant": getattr(model, "name", ""),
        "task": task,
        "data": spec,
        "n": n,
        "seed": seed,
        "metrics": sorted(groups),
        "scores": {},
        "baselines": {},
        "notes": [],
        "provenance": {},
    }
    try:
        with torch.no_grad():
            if task == "points":
                _eval_points(model, spec, groups, n, seed, data_seed, res)
            elif task == "unconditional":
                _eval_unconditional(
                    model,
                    spec,
                    groups,
                    n,
                    seed,
                    data_seed,
                    batch_size,
                    device,
                    inception_weights,
                    min_domain_accuracy,
                    explicit,
                    res,
                    log,
                )
            elif task in ("paired", "unpaired"):
                _eval_translation(model, spec, groups, n, data_seed, batch_size, device, res)
            elif task == "super_resolution":
                _eval_sr(model, spec, groups, n, data_seed, batch_size, device, res)
            elif task == "anomaly":
                _eval_anomaly(model, spec, groups, n, data_seed, batch_size, device, res)
            elif task == "text_to_image":
                _eval_text(model, n, seed, res)
            else:
                res["notes"].append(f"no metric set for task {task!r}")
    finally:
        if was_training and hasattr(model, "train"):
            model.train()
    res["provenance"]["common"] = provenance_common(n=n, seed=seed, data=spec, data_seed=data_seed, device=device)
    res["seconds"] = round(time.perf_counter() - t0, 2)
    for k, v in list(res["scores"].items()):
        if isinstance(v, float) and math.isnan(v):
            res["notes"].append(f"{k} is NaN (undefined for these samples)")
    return res


def metrics_path(model_path: str | Path) -> Path:
    """Where ``ganzoo eval`` writes its JSON: ``RUN/metrics.json`` for a run folder or ``RUN/model.safetensors``,
    ``NAME.metrics.json`` beside any other ``NAME.safetensors``."""
    p = Path(model_path)
    if p.is_dir():
        return p / "metrics.json"
    if p.name == "model.safetensors":
        return p.with_name("metrics.json")
    return p.with_name(p.stem + ".metrics.json")
