"""One call that scores a model with every evaluator registered for its task: :func:`evaluate`.

The evaluators (:mod:`ganzoo.metrics.evaluators`) are registered per task through the ``ganzoo_register_evaluators``
hook, the core's own in :mod:`ganzoo.metrics.builtin_evaluators`, a plugin's beside them. Images are streamed in
batches: features, per-image scores and class predictions are accumulated and the images dropped, so N is bounded
by time, not memory. Every score comes with its provenance (extractor and weights hash, resizer, N, reference split,
seed, versions), and generation scores always come with the real-vs-real floor at the same N (two disjoint real
splits scored exactly like the model), because FID-type numbers are biased in N and mean little without it.

This module also holds the helpers evaluators share: feature sets, Fréchet distances, batched data access, seeded
noise batches.
"""

from __future__ import annotations

import contextlib
import datetime
import math
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ganzoo import registry
from ganzoo._version import versions
from ganzoo.data.base import get_items
from ganzoo.errors import ConfigError, PluginError, UnknownNameError
from ganzoo.metrics.domain import DEFAULT_MIN_ACCURACY, DomainClassifier, class_scores, inception_score
from ganzoo.metrics.evaluators import EvalContext, Evaluation, Evaluator
from ganzoo.metrics.frechet import FeatureStats, frechet_distance, kid, precision_recall_density_coverage
from ganzoo.metrics.image import l1_per_image, pm1_to_255, psnr_per_image, ssim_per_image
from ganzoo.tasks import NoiseGenerator, protocol_of, require
from ganzoo.utils.images import as_pm1

__all__ = [
    "FEATURE_PRECISIONS",
    "FeatureSet",
    "bicubic_upsample",
    "distribution_scores",
    "evaluate",
    "evaluators_for",
    "frechet_from_features",
    "image_rows",
    "iter_batches",
    "iter_images",
    "load_inception",
    "mean_rows",
    "metrics_path",
    "noise_batches",
    "provenance_common",
    "resolve_feature_precision",
    "spec_name",
    "subset",
    "to_pm1",
]

Log = Callable[[str], None]


def _versions() -> dict[str, str]:
    return versions()


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


FEATURE_PRECISIONS = ("auto", "fp32", "bf16")
# What "auto" extracts with, per device type (docs/metrics.md, "Extraction speed"): the fastest setting whose FID
# (and FD-dom) stayed within 1 % of fp32's on real data. "bf16" is bf16 autocast with channels_last weights and inputs.
AUTO_PRECISION: dict[str, str] = {"cpu": "bf16", "cuda": "fp32"}
# Seconds per image of each extractor and precision on this project's 2-core CPU (AMD EPYC with AVX512-BF16, both
# threads, batch chunks of 8, quiet machine: benchmarks/feature_speed.py), for the cost estimate printed before a
# long evaluation; a GPU is taken as 100x faster.
INCEPTION_CPU_CHUNK = 8
CPU_SECONDS_PER_IMAGE: dict[tuple[str, str], float] = {
    ("inception", "fp32"): 0.085,
    ("inception", "bf16"): 0.052,
    ("domain", "fp32"): 0.002,
    ("domain", "bf16"): 0.002,
}


def resolve_feature_precision(precision: str, device: str | torch.device) -> str:
    """The precision the feature extractors run at: ``fp32``, or ``bf16`` (autocast, channels_last); ``auto`` picks
    per device (:data:`AUTO_PRECISION`).

    :param precision: ``"auto"``, ``"fp32"`` or ``"bf16"``.
    :param device: where the extractors run.
    :raises ConfigError: for another value.
    """
    if precision not in FEATURE_PRECISIONS:
        choices = ", ".join(FEATURE_PRECISIONS)
        raise ConfigError(f"feature precision {precision!r} is not valid; choose one of {choices}")
    if precision != "auto":
        return precision
    kind = torch.device(device).type
    choice = AUTO_PRECISION.get(kind, "fp32")
    if choice == "bf16" and kind == "cpu":
        from ganzoo.train.config import cpu_has_bf16

        # Without native bf16 the CPU emulates it, slower than fp32.
        return "bf16" if cpu_has_bf16() else "fp32"
    return choice


class FeatureSet:
    """Everything kept of one image set: Inception and domain feature statistics (with up to ``keep`` raw rows
    for KID and PRDC), and domain class probabilities.

    :param inception: the Inception extractor, or None.
    :param domain: the domain classifier, or None.
    :param keep: raw feature rows kept for KID/PRDC.
    :param precision: ``"fp32"``, or ``"bf16"`` to run the extractors under bf16 autocast in channels_last memory
        format (features and the statistics stay float32/float64).
    """

    def __init__(
        self, inception: Any = None, domain: DomainClassifier | None = None, keep: int = 10_000, precision: str = "fp32"
    ) -> None:
        self.inception = inception
        self.domain = domain
        self.keep = keep
        self.precision = precision
        self.incep = FeatureStats(max_keep=keep, keep_device="cpu")
        self.dom = FeatureStats(max_keep=keep, keep_device="cpu")
        self.probs: list[Tensor] = []
        self.num = 0

    def _autocast(self, device: torch.device) -> Any:
        if self.precision == "bf16":
            return torch.autocast(device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    @torch.no_grad()
    def update(self, images: Tensor) -> None:
        """Add a batch: uint8 0..255 or float [-1, 1] images (B, C, H, W)."""
        # Set on every batch: the extractors are shared, and fp32 must mean the plain contiguous reference.
        cl = self.precision == "bf16"
        if self.inception is not None:
            if hasattr(self.inception, "set_channels_last"):
                self.inception.set_channels_last(cl)
            dev = next(self.inception.parameters()).device
            # On a CPU, Inception at 299 px runs faster in small chunks than in one batch of 64 (bf16, 2 threads,
            # benchmarks/feature_speed.py: 19.2 images/s in chunks of 8, 18.9 of 4, 18.4 of 16, 15.6 of 64, 13.1 of
            # 1); the features are the same either way.
            chunk = INCEPTION_CPU_CHUNK if dev.type == "cpu" else images.shape[0]
            with self._autocast(dev):
                f = torch.cat([self.inception(part.to(dev)) for part in images.split(chunk)])
            self.incep.update(f.float())
        if self.domain is not None:
            self.domain.set_channels_last(cl)
            dev = next(self.domain.net.parameters()).device
            with self._autocast(dev):
                f, p = self.domain.features_and_probs(images)
            self.dom.update(f.float())
            self.probs.append(p.float().cpu())
        self.num += images.shape[0]

    def state_tensors(self) -> dict[str, Tensor]:
        """The set's statistics, kept rows and probabilities as CPU tensors (what the feature cache stores)."""
        out = {"num": torch.tensor([self.num], dtype=torch.int64)}
        out.update({f"incep/{k}": v for k, v in self.incep.state_tensors().items()})
        out.update({f"dom/{k}": v for k, v in self.dom.state_tensors().items()})
        if self.probs:
            out["probs"] = torch.cat(self.probs)
        return out

    def load_state_tensors(self, tensors: dict[str, Tensor]) -> None:
        """Replace the contents with those of :meth:`state_tensors` (bit for bit).

        :param tensors: what :meth:`state_tensors` returned.
        """
        self.num = int(tensors["num"][0])
        for attr, prefix in (("incep", "incep/"), ("dom", "dom/")):
            part = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
            setattr(self, attr, FeatureStats.from_state_tensors(part, max_keep=self.keep, keep_device="cpu"))
        self.probs = [tensors["probs"]] if "probs" in tensors else []


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


def subset(n_total: int, n: int, seed: int) -> list[int]:
    """``min(n, n_total)`` indices of ``range(n_total)`` drawn without replacement with ``seed``, sorted.

    :param n_total: the dataset's size.
    :param n: how many to draw.
    :param seed: the draw's seed.
    """
    g = torch.Generator().manual_seed(seed)
    return torch.randperm(n_total, generator=g)[: min(n, n_total)].sort().values.tolist()


def iter_batches(ds: Any, indices: list[int], batch_size: int) -> Iterator[dict[str, Any]]:
    """Items of ``ds`` at ``indices``, ``batch_size`` at a time, collated; consecutive items of different sizes
    go into separate batches (test sets mix image sizes).

    :param ds: a map-style dataset of dict items.
    :param indices: the items to read, in order.
    :param batch_size: the most items per batch.
    """
    from torch.utils.data import default_collate

    for start in range(0, len(indices), batch_size):
        items = get_items(ds, indices[start : start + batch_size])
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
    """The ``key`` tensors of :func:`iter_batches`.

    :param ds: a map-style dataset of dict items.
    :param indices: the items to read.
    :param batch_size: the most items per batch.
    :param key: the item key to yield.
    """
    for batch in iter_batches(ds, indices, batch_size):
        yield batch[key]


def to_pm1(x: Tensor, device: torch.device | str) -> Tensor:
    """uint8 ``0..255`` or float images as floats in ``[-1, 1]`` on ``device``.

    :param x: the images.
    :param device: where to put them.
    """
    return as_pm1(x.to(device)).float()


def spec_name(spec: str) -> str:
    """The dataset name of a data spec (``"mnist"`` of ``"mnist:/data"``).

    :param spec: a data spec.
    """
    from ganzoo.train.data import parse_data_spec

    return parse_data_spec(spec)[0]


def noise_batches(model: NoiseGenerator, n: int, seed: int, batch_size: int) -> Iterator[Tensor]:
    """``n`` samples of a noise model, ``batch_size`` at a time, each batch with its own seed derived from ``seed``
    (reproducible, and never the same noise twice).

    :param model: a :class:`ganzoo.tasks.NoiseGenerator`.
    :param n: how many samples.
    :param seed: the base seed.
    :param batch_size: samples per call.
    """
    for i, start in enumerate(range(0, n, batch_size)):
        b = min(batch_size, n - start)
        yield model.generate(n=b, seed=seed * 1_000_003 + i).float()


def image_rows(pred: Tensor, ref: Tensor, y_channel: bool = False, shave: int = 0) -> dict[str, Tensor]:
    """Per-image PSNR, SSIM and L1 of ``[-1, 1]`` images rounded to 8 bits.

    :param pred: ``(B, C, H, W)`` predictions in ``[-1, 1]``.
    :param ref: the references, same shape.
    :param y_channel: score the BT.601 Y channel.
    :param shave: pixels removed from each border.
    :returns: ``{"psnr", "ssim", "l1"}`` -> ``(B,)`` values.
    """
    p, r = pm1_to_255(pred.cpu()), pm1_to_255(ref.cpu())
    return {
        "psnr": psnr_per_image(p, r, y_channel=y_channel, shave=shave),
        "ssim": ssim_per_image(p, r, y_channel=y_channel, shave=shave),
        "l1": l1_per_image(p, r),
    }


def mean_rows(rows: list[dict[str, Tensor]], metrics: set[str] | frozenset[str]) -> dict[str, float]:
    """The means over all rows of :func:`image_rows` of the selected metrics present in every row.

    :param rows: per-batch dicts of per-image values.
    :param metrics: the metric names to keep (``psnr``, ``ssim``, ``l1``).
    """
    out = {}
    for k in ("psnr", "ssim", "l1"):
        if k in metrics and rows and all(k in r for r in rows):
            out[k] = float(torch.cat([r[k] for r in rows]).mean())
    return out


def bicubic_upsample(lr: Tensor, size: tuple[int, int] | torch.Size) -> Tensor:
    """PIL BICUBIC upsampling of uint8 ``(B, C, h, w)`` to ``(B, C, H, W)``: the SR papers' baseline.

    :param lr: uint8 low-resolution images.
    :param size: the target ``(H, W)``.
    """
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


# ---- the entry point -------------------------------------------------------------------------------------------------


def evaluators_for(model: Any, data: str) -> list[Evaluator]:
    """The registered evaluators of ``model``'s task that apply to it on ``data``, in registration order (the
    core's first).

    :param model: a variant.
    :param data: the reference data spec.
    :returns: the evaluators ``evaluate`` would run by default.
    """
    task = str(getattr(model, "task", "unconditional"))
    return [e.obj for e in registry.evaluators().values() if task in e.tasks and e.obj.applies(model, data)]


def _select(
    task: str, found: list[Evaluator], metrics: list[str] | str | None
) -> tuple[list[tuple[Evaluator, frozenset[str]]], bool]:
    """The evaluators to run with their selected metrics, and whether the selection was explicit."""
    if metrics is None:
        return [(e, frozenset(e.metrics)) for e in found], False
    asked = [m.strip().lower() for m in (metrics.split(",") if isinstance(metrics, str) else metrics) if m.strip()]
    valid = [m for e in found for m in e.metrics]
    for m in asked:
        if m not in valid:
            raise UnknownNameError(f"metric for {task} models", m, valid)
    chosen = [(e, frozenset(m for m in e.metrics if m in asked)) for e in found]
    return [(e, ms) for e, ms in chosen if ms], True


def _merge(res: dict[str, Any], ev: Evaluation) -> None:
    res["scores"].update(ev.scores)
    for name, values in ev.baselines.items():
        res["baselines"].setdefault(name, {}).update(values)
    res["notes"].extend(n for n in ev.notes if n not in res["notes"])
    res["provenance"].update(ev.provenance)
    if ev.reference:
        res.setdefault("reference", {}).update(ev.reference)


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
    cache: bool = True,
    feature_precision: str = "auto",
    progress: bool | None = None,
) -> dict[str, Any]:
    """Score ``model`` with the evaluators registered for its task; returns a JSON-serialisable dict.

    :param model: a :class:`ganzoo.GANVariant` (e.g. from :func:`ganzoo.load`), implementing its task's protocol
        of :mod:`ganzoo.tasks`.
    :param data: data spec of the reference data (default: the model's own ``default_data``).
    :param metrics: metric names (a list or a comma-separated string; see ``ganzoo eval --help`` or
        :func:`evaluators_for`), default every metric of every applicable evaluator. Asking explicitly for a metric
        that cannot be computed (no Inception weights, no accurate domain classifier) raises; by default such
        metrics are skipped with a note.
    :param n: sample count N (default: each evaluator's ``default_n``); generated and real sets both have N items.
    :param seed: noise seed of the samples and the seed of the real subsets.
    :param device: where the model and feature extractors run.
    :param batch_size: images per forward pass.
    :param data_seed: seed of the dataset streams (the training seed, 0 by default).
    :param inception_weights: path of the FID Inception weights (default: the usual search).
    :param min_domain_accuracy: the domain classifier refuses to score below this held-out accuracy.
    :param log: receives progress lines.
    :param cache: read and write the real-data feature statistics in the feature cache (:mod:`ganzoo.metrics.cache`);
        ``False`` recomputes them and stores nothing.
    :param feature_precision: ``"fp32"``, ``"bf16"`` (autocast) or ``"auto"`` (the fastest setting that keeps FID
        within 1 % of fp32's, per extractor and device: :data:`AUTO_PRECISION`).
    :param progress: show a progress bar with an ETA on stderr (default: when ``log`` is set and stderr is a
        terminal).
    :returns: ``{"model", "variant", "task", "data", "n", "seed", "metrics", "evaluators", "scores", "baselines",
        "notes", "provenance", "seconds"}`` (and ``"reference"`` when real sets were drawn); ``scores`` are flat
        numbers, ``baselines`` maps a baseline name (``real_vs_real``, ``bicubic``, ``identity``, ``chance``) to
        the same keys.
    :raises ganzoo.UnknownNameError: for a metric no applicable evaluator of the task computes.
    :raises ganzoo.PluginError: when the model does not implement its task's protocol.
    """
    t0 = time.perf_counter()
    spec = data or getattr(model, "default_data", None) or "shapes"
    task = str(getattr(model, "task", "unconditional"))
    require(model, protocol_of(task), purpose="ganzoo eval")
    found = evaluators_for(model, spec)
    if not found and metrics is None:
        known = sorted(e.name for e in registry.evaluators().values() if task in e.tasks)
        raise PluginError(
            f"no registered evaluator applies to {getattr(model, 'name', type(model).__name__)} ({task}) on data "
            f"{spec!r}" + (f"; evaluators of the task: {', '.join(known)}" if known else "")
        )
    selected, explicit = _select(task, found, metrics)
    if n is not None and int(n) < 2:
        raise ConfigError(f"n must be >= 2, got {n}")
    resolve_feature_precision(feature_precision, device)  # a bad value fails before any work
    sizes = {e.name: int(n if n is not None else e.default_n) for e, _ in selected}
    was_training = getattr(model, "training", False)
    if isinstance(model, torch.nn.Module):
        model.eval().to(device)
    res: dict[str, Any] = {
        "model": getattr(model, "registered_name", getattr(model, "name", type(model).__name__)),
        "variant": getattr(model, "name", ""),
        "task": task,
        "data": spec,
        "n": int(n) if n is not None else max(sizes.values(), default=0),
        "seed": seed,
        "metrics": sorted({m for _, ms in selected for m in ms}),
        "evaluators": [e.name for e, _ in selected],
        "scores": {},
        "baselines": {},
        "notes": [],
        "provenance": {},
    }
    base = EvalContext(
        data=spec,
        n=res["n"],
        seed=seed,
        data_seed=data_seed,
        device=device,
        batch_size=batch_size,
        explicit=explicit,
        inception_weights=inception_weights,
        min_domain_accuracy=min_domain_accuracy,
        log=log,
        cache=cache,
        feature_precision=feature_precision,
        progress=bool(log is not None and sys.stderr.isatty()) if progress is None else progress,
    )
    try:
        with torch.no_grad():
            contexts = [(e, base.for_evaluator(sizes[e.name], chosen)) for e, chosen in selected]
            _announce_cost(model, contexts, base, n)
            for evaluator, ctx in contexts:
                _merge(res, evaluator.evaluate(model, ctx))
    finally:
        if was_training and hasattr(model, "train"):
            model.train()
    res["provenance"]["common"] = provenance_common(
        n=res["n"], seed=seed, data=spec, data_seed=data_seed, device=device, evaluators=sizes
    )
    res["seconds"] = round(time.perf_counter() - t0, 2)
    for k, v in list(res["scores"].items()):
        if isinstance(v, float) and math.isnan(v):
            res["notes"].append(f"{k} is NaN (undefined for these samples)")
    return res


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


def _announce_cost(model: Any, contexts: list[tuple[Evaluator, EvalContext]], base: EvalContext, n: int | None) -> None:
    """One line before an evaluation expected to take over a minute: the estimate and what makes it cheaper."""
    if base.log is None:
        return
    parts: list[tuple[str, float]] = []
    for evaluator, ctx in contexts:
        est = getattr(evaluator, "estimate_seconds", None)
        seconds = est(model, ctx) if est is not None else None
        if seconds:
            parts.append((evaluator.name, float(seconds)))
    total = sum(s for _, s in parts)
    if total <= 60:
        return
    worst, _ = max(parts, key=lambda p: p[1])
    smaller = max(2, min(c.n for _, c in contexts) // 4)
    cache_hint = (
        "the real-data features are computed once and cached, so later runs cost less"
        if base.cache
        else "without --no-cache the real-data features would be cached"
    )
    base.say(
        f"estimated {_duration(total)} ({', '.join(f'{k} {_duration(v)}' for k, v in parts)}); cheaper: a smaller "
        f"-n (e.g. -n {smaller}), or --metrics without {worst}'s metrics; {cache_hint}"
    )


def metrics_path(model_path: str | Path) -> Path:
    """Where ``ganzoo eval`` writes its JSON: ``RUN/metrics.json`` for a run folder or ``RUN/model.safetensors``,
    ``NAME.metrics.json`` beside any other ``NAME.safetensors``."""
    p = Path(model_path)
    if p.is_dir():
        return p / "metrics.json"
    if p.name == "model.safetensors":
        return p.with_name("metrics.json")
    return p.with_name(p.stem + ".metrics.json")
