"""The core's evaluators, registered through ``ganzoo_register_evaluators`` (see :mod:`ganzoo.metrics.evaluators`).

| task | evaluator | metrics | default N |
| --- | --- | --- | --- |
| unconditional | ``inception`` | ``fid kid prdc`` (Inception-v3 FID network) | 1000 |
| unconditional | ``domain`` | ``fd-dom kid-dom prdc-dom classes`` (domain classifier) | 1000 |
| unconditional, 2D points | ``modes-2d`` | ``modes-2d`` (VEEGAN/PacGAN mode protocol) | 2500 |
| paired, unpaired | ``image-pairs`` | ``psnr ssim l1 grad-ratio hf-ratio`` against ``b`` (paired) or ``b_true`` | 200 |
| super_resolution | ``sr`` | ``psnr ssim`` on the Y channel, ``scale`` px shaved | 100 |
| anomaly | ``anomaly`` | ``auroc auprc`` | the whole test split |
| text_to_image on shapes-captions | ``scenes`` | ``r-precision attributes`` (scene-attribute classifier) | 1000 |
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any

import torch

from ganzoo.errors import ConfigError, GanzooError
from ganzoo.metrics.domain import (
    DOMAIN_DATASETS,
    DomainClassifierError,
    domain_cache_path,
    get_domain_classifier,
    recipe_for,
)
from ganzoo.metrics.evaluate import (
    CPU_SECONDS_PER_IMAGE,
    FeatureSet,
    bicubic_upsample,
    distribution_scores,
    image_rows,
    iter_batches,
    iter_images,
    load_inception,
    mean_rows,
    noise_batches,
    resolve_feature_precision,
    spec_name,
    subset,
    to_pm1,
)
from ganzoo.metrics.evaluators import EvalContext, Evaluation
from ganzoo.metrics.image import pm1_to_255, psnr_per_image, ssim_per_image
from ganzoo.metrics.modes import mode_stats
from ganzoo.metrics.ranking import auprc, auroc
from ganzoo.metrics.sharpness import SHARPNESS_METRICS, sharpness_ratio, sharpness_rows
from ganzoo.tasks import AnomalyScorer, NoiseGenerator, TextToImageGenerator, Translator, Upscaler, require

__all__ = [
    "AnomalyEvaluator",
    "DomainEvaluator",
    "ImagePairsEvaluator",
    "InceptionEvaluator",
    "Modes2DEvaluator",
    "SREvaluator",
    "ScenesEvaluator",
    "register_evaluators",
]

POINT_DATA = ("ring8", "grid25")


def is_point_model(model: Any, data: str) -> bool:
    """Whether ``model`` generates 2D points (image size 0) or ``data`` is a 2D point mixture.

    :param model: a variant.
    :param data: the reference data spec.
    """
    return int(getattr(model, "image_size", 1) or 0) == 0 or spec_name(data) in POINT_DATA


# ---- unconditional images --------------------------------------------------------------------------------------------


def _plan(model: Any, ctx: EvalContext) -> dict[str, Any]:
    """The real sets of an image evaluation: N train images (the reference) and N held-out images (the floor)."""
    key = f"plan:{ctx.n}:{ctx.seed}"
    if key in ctx.shared:
        return ctx.shared[key]
    n, seed = ctx.n, ctx.seed
    train_ds, split_note, floor_split = ctx.dataset(model, "train"), "test", "test"
    try:
        test_ds = ctx.dataset(model, "test")
    except GanzooError:
        test_ds = None
    if test_ds is None or spec_name(ctx.data) == "folder":
        # One folder has no held-out split: the floor compares two disjoint halves of it.
        perm = subset(len(train_ds), 2 * n, seed)
        ref_idx, floor_idx, floor_ds = perm[::2], perm[1::2], train_ds
        split_note, floor_split = "train (other half)", "train"
    else:
        ref_idx, floor_idx, floor_ds = subset(len(train_ds), n, seed), subset(len(test_ds), n, seed + 1), test_ds
    plan = {
        "reference": ("train", train_ds, ref_idx, seed),
        "floor": (floor_split, floor_ds, floor_idx, seed + 1),
        "split_note": split_note,
    }
    ctx.shared[key] = plan
    return plan


def _extractor_identity(name: str, provenance: dict[str, Any]) -> dict[str, Any]:
    keep = ("extractor", "weights_sha256", "resize", "quantize_uint8", "feature_dim")
    return {"name": name, **{k: provenance.get(k) for k in keep}}


def real_features_key(
    model: Any, ctx: EvalContext, which: str, extractor: dict[str, Any], precision: str
) -> dict[str, Any]:
    """The feature-cache key of one real set of an image evaluation (see :mod:`ganzoo.metrics.cache`).

    :param model: the variant evaluated (its image size, channels and data options shape the data).
    :param ctx: the evaluation context.
    :param which: ``"reference"`` or ``"floor"``.
    :param extractor: the extractor's identity (name, weights sha256, resizer, quantization, feature size).
    :param precision: the resolved extraction precision.
    """
    from ganzoo.metrics.cache import KEY_VERSION, data_content_digest, indices_digest, normalised_spec

    split, ds, idx, seed = _plan(model, ctx)[which]
    key = {
        "version": KEY_VERSION,
        "data": normalised_spec(ctx.data),
        "content": data_content_digest(ctx.data),
        "data_seed": ctx.data_seed,
        "split": split,
        "dataset_len": len(ds),
        "n": len(idx),
        "subset_seed": seed,
        "indices": indices_digest(idx),
        "pipeline": {
            "image_size": int(getattr(model, "image_size", 0)),
            "channels": int(getattr(model, "channels", 0)),
            "data_options": model.data_options() if hasattr(model, "data_options") else {},
        },
        "extractor": extractor,
        "precision": precision,
        "keep": len(idx),
    }
    return json.loads(json.dumps(key, sort_keys=True, default=str))


# Training a domain classifier on first use (docs/metrics.md: 24-59 s on 2 shared cores).
DOMAIN_TRAIN_SECONDS = 60.0
# Training the scene-attribute classifier on first use (docs/metrics.md: 107 s at 32 px on 2 shared cores).
SCENE_TRAIN_SECONDS = 120.0
# Real images below this R-precision make the scene classifier's ranking untrustworthy (issue target: 90 %).
REAL_R_PRECISION_FLOOR = 0.9
# Evaluations shorter than this show no progress bar at all.
BAR_DELAY_S = 3.0


def _bar(ctx: EvalContext, total: int, what: str) -> Any:
    from tqdm.auto import tqdm

    return tqdm(
        total=total,
        desc=what,
        unit="img",
        file=sys.stderr,
        disable=not ctx.progress,
        delay=BAR_DELAY_S,
        dynamic_ncols=True,
    )


def _real_and_fake(
    model: Any, ctx: EvalContext, section: str, extractor: Any, out: Evaluation
) -> tuple[FeatureSet, FeatureSet, FeatureSet]:
    """Feature sets of N train images (the reference), N held-out images (the floor) and N samples, the real ones
    from the feature cache when present there."""
    n, seed = ctx.n, ctx.seed
    inception, domain = (extractor, None) if section == "inception" else (None, extractor)
    precision = resolve_feature_precision(ctx.feature_precision, ctx.device)
    ident = _extractor_identity(section, extractor.provenance)
    plan = _plan(model, ctx)
    cache = ctx.feature_cache()
    sets: dict[str, FeatureSet] = {}
    infos: dict[str, Any] = {}
    t0 = time.perf_counter()
    what = "Inception" if section == "inception" else "the domain classifier"
    with _bar(ctx, n, f"eval {section}") as bar:

        def extract(batches: Any) -> FeatureSet:
            fs = FeatureSet(inception, domain, n, precision)
            for imgs in batches:
                if imgs.ndim != 4:
                    raise ConfigError(f"{model.name} generated {tuple(imgs.shape)}; image metrics need (B, C, H, W)")
                fs.update(imgs)
                bar.update(imgs.shape[0])
            return fs

        for which in ("reference", "floor"):
            _, ds, idx, _ = plan[which]
            key = real_features_key(model, ctx, which, ident, precision)
            cached = cache.enabled and cache.path_for(key).is_file()
            if not cached:
                bar.total += len(idx)
                bar.refresh()

            def compute(ds: Any = ds, idx: list[int] = idx) -> dict[str, Any]:
                later = " (cached for later evaluations)" if cache.enabled else ""
                ctx.say(f"computing {section} features of {len(idx)} real images{later}")
                return extract(iter_images(ds, idx, ctx.batch_size)).state_tensors()

            tensors, infos[which] = cache.get_or_compute(key, compute)
            fs = FeatureSet(inception, domain, n, precision)
            fs.load_state_tensors(tensors)
            sets[which] = fs
        fake = extract(noise_batches(model, n, seed, ctx.batch_size))
    ref, floor = sets["reference"], sets["floor"]
    hits = sum(1 for i in infos.values() if i.get("hit"))
    ctx.say(
        f"{what}: features of {fake.num} generated images and {ref.num} + {floor.num} real ones "
        f"({hits} of 2 real sets from the cache) in {time.perf_counter() - t0:.1f} s"
    )
    out.provenance.setdefault(section, {})["reference_features"] = {**infos, "precision": precision}
    out.reference = {
        "data": ctx.data,
        "reference_split": f"train, {ref.num} items drawn with seed {seed}",
        "floor_split": f"{plan['split_note']}, {floor.num} items drawn with seed {seed + 1}",
        "generated": f"{fake.num} samples, noise seeds derived from {seed}",
    }
    if fake.num != n or ref.num < n:
        out.notes.append(f"asked for N={n}; used {fake.num} generated and {ref.num} reference images")
    return ref, fake, floor


def _estimate(model: Any, ctx: EvalContext, section: str, extractor: dict[str, Any] | None) -> float:
    """Seconds the extraction of an image evaluation is expected to take (real sets not yet cached, plus N
    generated images), from :data:`ganzoo.metrics.evaluate.CPU_SECONDS_PER_IMAGE`."""
    precision = resolve_feature_precision(ctx.feature_precision, ctx.device)
    plan = _plan(model, ctx)
    images = ctx.n
    cache = ctx.feature_cache()
    for which in ("reference", "floor"):
        cold = not cache.enabled or extractor is None
        if not cold:
            cold = not cache.path_for(real_features_key(model, ctx, which, extractor, precision)).is_file()
        images += len(plan[which][2]) if cold else 0
    per = CPU_SECONDS_PER_IMAGE[(section, precision)] / (100 if torch.device(ctx.device).type == "cuda" else 1)
    return images * per


def _inception(ctx: EvalContext) -> tuple[Any, str | None]:
    """The Inception extractor of this call (loaded once and shared), or ``(None, reason)``."""
    if "inception" not in ctx.shared:
        ctx.shared["inception"] = load_inception(ctx.inception_weights, device=ctx.device)
    return ctx.shared["inception"]


class InceptionEvaluator:
    """FID, KID and PRDC with the Inception-v3 FID network against N train images; the floor is N test images."""

    name = "inception"
    tasks = ("unconditional",)
    metrics = ("fid", "kid", "prdc")
    default_n = 1000  # sized for a CPU: ~3,000 Inception forwards (model, train, test)
    help = "FID, KID, precision/recall/density/coverage on Inception-v3 (2015 FID weights) features"

    def applies(self, model: Any, data: str) -> bool:
        """Image models only (not 2D points)."""
        return not is_point_model(model, data)

    headline = "fid"

    def estimate_seconds(self, model: Any, ctx: EvalContext) -> float | None:
        """Expected seconds: the Inception forwards of the real sets not yet cached and of N samples."""
        inception, _ = _inception(ctx)
        if inception is None:
            return None
        return _estimate(model, ctx, "inception", _extractor_identity("inception", inception.provenance))

    def evaluate(self, model: Any, ctx: EvalContext) -> Evaluation:
        """Scores against the train split, and the real-vs-real floor at the same N."""
        model = require(model, NoiseGenerator, purpose="the inception evaluator")
        out = Evaluation()
        inception, why = _inception(ctx)
        if inception is None:
            if ctx.explicit:
                raise GanzooError(why or "Inception weights unavailable")
            out.notes.append(why or "Inception weights unavailable")
            return out
        out.provenance["inception"] = dict(inception.provenance)
        ref, fake, floor = _real_and_fake(model, ctx, "inception", inception, out)
        out.scores.update(distribution_scores(ref, fake, set(ctx.metrics), ctx.seed))
        out.baselines["real_vs_real"] = distribution_scores(ref, floor, set(ctx.metrics), ctx.seed)
        return out


class DomainEvaluator:
    """FD-dom, KID-dom, PRDC-dom, class coverage, class KL and a domain Inception Score, with the project's domain
    classifier of the data (shapes, MNIST)."""

    name = "domain"
    tasks = ("unconditional",)
    metrics = ("fd-dom", "kid-dom", "prdc-dom", "classes")
    default_n = 1000
    help = "Frechet distance, KID, PRDC, class coverage/KL and IS on the data's domain-classifier features"
    headline = "fd-dom"

    def estimate_seconds(self, model: Any, ctx: EvalContext) -> float | None:
        """Expected seconds of the classifier's forwards (milliseconds per image), plus its training when it is
        not cached yet."""
        name = spec_name(ctx.data)
        if name not in DOMAIN_DATASETS:
            return None
        if not domain_cache_path(ctx.data, model.image_size, model.channels, recipe_for(ctx.data)).is_file():
            return DOMAIN_TRAIN_SECONDS + _estimate(model, ctx, "domain", None)
        try:
            domain = self._classifier(model, ctx)
        except DomainClassifierError:
            return None
        return _estimate(model, ctx, "domain", _extractor_identity("domain", domain.provenance))

    def _classifier(self, model: Any, ctx: EvalContext) -> Any:
        key = f"domain:{model.image_size}:{model.channels}"
        if key not in ctx.shared:
            ctx.shared[key] = get_domain_classifier(
                ctx.data, model.image_size, model.channels, min_accuracy=ctx.min_domain_accuracy, log=ctx.log
            ).to(ctx.device)
        return ctx.shared[key]

    def applies(self, model: Any, data: str) -> bool:
        """Image models only (not 2D points)."""
        return not is_point_model(model, data)

    def evaluate(self, model: Any, ctx: EvalContext) -> Evaluation:
        """Scores against the train split, and the real-vs-real floor at the same N."""
        model = require(model, NoiseGenerator, purpose="the domain evaluator")
        out = Evaluation()
        name = spec_name(ctx.data)
        try:
            if name not in DOMAIN_DATASETS:
                raise DomainClassifierError(
                    f"no domain classifier for data {name!r} (datasets with one: {', '.join(DOMAIN_DATASETS)})"
                )
            domain = self._classifier(model, ctx)
        except DomainClassifierError as e:
            if ctx.explicit:
                raise
            out.notes.append(f"domain metrics skipped: {e}")
            return out
        out.provenance["domain"] = dict(domain.provenance)
        ref, fake, floor = _real_and_fake(model, ctx, "domain", domain, out)
        out.scores.update(distribution_scores(ref, fake, set(ctx.metrics), ctx.seed))
        out.baselines["real_vs_real"] = distribution_scores(ref, floor, set(ctx.metrics), ctx.seed)
        return out


class Modes2DEvaluator:
    """The mode protocol of VEEGAN/PacGAN on 2D mixtures (ring8, grid25): modes, high-quality %, reverse KL."""

    name = "modes-2d"
    tasks = ("unconditional",)
    metrics = ("modes-2d",)
    default_n = 2500
    help = "2D mixtures: modes captured, high-quality fraction, reverse KL (VEEGAN/PacGAN)"
    headline = "modes-2d"

    def applies(self, model: Any, data: str) -> bool:
        """Point models, or point data."""
        return is_point_model(model, data)

    def evaluate(self, model: Any, ctx: EvalContext) -> Evaluation:
        """N samples against the mixture's modes; the floor is N test points."""
        model = require(model, NoiseGenerator, purpose="the modes-2d evaluator")
        ds = ctx.dataset(model, "test")
        centres, std = getattr(ds, "modes", None), getattr(ds, "std", None)
        if centres is None or std is None:
            raise ConfigError(
                f"data {ctx.data!r} has no known modes (a `modes` and `std` attribute); modes-2d needs them"
            )
        n = ctx.n
        samples = torch.cat([b.cpu() for b in noise_batches(model, n, ctx.seed, max(n, 1))])
        if samples.ndim != 2 or samples.shape[1] != 2:
            raise ConfigError(f"modes-2d needs (N, 2) points; {model.name} generated {tuple(samples.shape)}")
        real = torch.cat(list(iter_images(ds, list(range(min(n, len(ds)))), 4096)))
        out = Evaluation(scores=dict(mode_stats(samples, centres, std)))
        out.baselines["real_vs_real"] = mode_stats(real, centres, std)
        out.provenance["modes-2d"] = {
            "protocol": "VEEGAN/PacGAN: high quality = within 3 std of the nearest mode; reverse KL of the mode "
            "histogram of high-quality samples from uniform",
            "modes": int(centres.shape[0]),
            "std": float(std),
            "real_reference": f"{ctx.data} test split, first {len(real)} points",
        }
        return out


# ---- image to image --------------------------------------------------------------------------------------------------


class ImagePairsEvaluator:
    """PSNR/SSIM/L1 and the sharpness ratios (:mod:`ganzoo.metrics.sharpness`) of translations against ground truth:
    ``b`` for paired data, the hidden pairing ``b_true`` of unpaired data; the identity mapping is the baseline. A
    model that also translates b -> a (a cycle) is scored in that direction too, on ``b_true`` against ``a``, under
    the same names prefixed ``b2a_``."""

    name = "image-pairs"
    tasks = ("paired", "unpaired")
    metrics = ("psnr", "ssim", "l1", *SHARPNESS_METRICS)
    default_n = 200
    help = (
        "PSNR/SSIM/L1 (8-bit RGB) of a -> b translations against the ground truth (and b -> a for cycles, b2a_*), "
        "gradient and high-frequency energy ratios (1 = as sharp as the truth); identity as baseline"
    )

    def applies(self, model: Any, data: str) -> bool:
        """Every translation model (unpaired data without a hidden pairing gets a note)."""
        return True

    def evaluate(self, model: Any, ctx: EvalContext) -> Evaluation:
        """The first N items of the test split, translated a -> b (and b -> a)."""
        translator = require(model, Translator, purpose="the image-pairs evaluator")
        out = Evaluation()
        ds = ctx.dataset(model, "test")
        idx = list(range(min(ctx.n, len(ds))))
        first = next(iter_batches(ds, idx[:1], 1))
        target = "b" if str(model.task) == "paired" else "b_true"
        if target not in first:
            out.notes.append(
                f"data {ctx.data!r} has no hidden pairing (b_true): unpaired outputs have no ground truth to score"
            )
            return out
        directions = [("a2b", "a", target, "")]
        if target == "b_true" and "b2a" in tuple(getattr(translator, "directions", ())):
            directions.append(("b2a", target, "a", "b2a_"))
        for direction, source, truth, prefix in directions:
            scores, identity = self._direction(translator, ds, idx, direction, source, truth, ctx)
            out.scores.update({prefix + k: v for k, v in scores.items()})
            if identity:
                out.baselines.setdefault("identity", {}).update({prefix + k: v for k, v in identity.items()})
        reverse = f"; b2a_* = {target!r} translated b -> a against 'a'" if len(directions) > 1 else ""
        out.provenance["image"] = {
            "protocol": "8-bit RGB (outputs rounded from [-1, 1] to 0..255), PSNR peak 255, SSIM Gaussian 11x11 "
            "sigma 1.5 on every channel, mean over images; grad-ratio = mean gradient magnitude (forward "
            "differences) of the outputs / that of the targets, hf-ratio = the same for the spectral energy above "
            "half the Nyquist frequency (1 = as sharp as the targets)",
            "reference": f"{ctx.data} test split, items 0..{len(idx) - 1}, target {target!r}{reverse}",
            "n": len(idx),
        }
        return out

    @staticmethod
    def _direction(
        translator: Any, ds: Any, idx: list[int], direction: str, source: str, truth: str, ctx: EvalContext
    ) -> tuple[dict[str, float], dict[str, float]]:
        """Scores of ``source`` translated in ``direction`` against ``truth``, and of the identity mapping."""
        ours, ident = [], []
        # Per-image sharpness of the outputs, the identity (the inputs) and the truth: each ratio is a ratio of means
        # over all N images, so it is accumulated here and divided once at the end.
        sharp: dict[str, list[dict[str, torch.Tensor]]] = {"ours": [], "identity": [], "truth": []}
        for batch in iter_batches(ds, idx, ctx.batch_size):
            x = to_pm1(batch[source], ctx.device)
            y = to_pm1(batch[truth], ctx.device)
            pred = translator.translate(x, direction)
            ours.append(image_rows(pred, y))
            sharp["ours"].append(sharpness_rows(pm1_to_255(pred.cpu())))
            sharp["truth"].append(sharpness_rows(pm1_to_255(y.cpu())))
            if x.shape == y.shape:
                ident.append(image_rows(x, y))
                sharp["identity"].append(sharpness_rows(pm1_to_255(x.cpu())))

        def ratios(rows: list[dict[str, torch.Tensor]]) -> dict[str, float]:
            return {
                k: sharpness_ratio([r[k] for r in rows], [r[k] for r in sharp["truth"]])
                for k in SHARPNESS_METRICS
                if ctx.wants(k)
            }

        scores = {**mean_rows(ours, ctx.metrics), **ratios(sharp["ours"])}
        identity = {**mean_rows(ident, ctx.metrics), **ratios(sharp["identity"])} if ident else {}
        return scores, identity


def _pil_luma(images: torch.Tensor) -> torch.Tensor:
    """PIL's ``convert("L")`` of 8-bit RGB values: ``(19595 R + 38470 G + 7471 B + 2^15) >> 16``."""
    x = images.round().clamp(0, 255).to(torch.int64)
    luma = (19595 * x[:, 0] + 38470 * x[:, 1] + 7471 * x[:, 2] + 32768) >> 16
    return luma.unsqueeze(1).to(torch.float64)


def _sr_protocol_views(
    pred: torch.Tensor, hr: torch.Tensor, gray: torch.Tensor
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Per image, what the SR protocol compares: an RGB image as it is (scored on its Y channel), and an image from
    a grayscale file (``gray``; its item holds it as three equal channels, like img_003 of Set14) as one channel,
    the output turned to gray the way ``ganzoo sr-eval`` saves it, so both commands give the published bicubic row
    (25.99 dB on Set14, not the 26.09 of scoring the gray file as RGB)."""
    preds, refs = [], []
    for p, h, g in zip(pred, hr, gray.tolist()):
        if g and h.shape[0] == 3:
            preds.append(_pil_luma(p[None])[0])
            refs.append(h[:1])
        else:
            preds.append(p)
            refs.append(h)
    return preds, refs


class SREvaluator:
    """Y-channel PSNR/SSIM with ``scale`` pixels shaved (the SR literature's protocol), the sharpness ratios of
    :mod:`ganzoo.metrics.sharpness` against the HR images (a perceptual-side measure: PSNR rewards blur, a GAN stage
    trades PSNR for detail), and the PIL-bicubic baseline."""

    name = "sr"
    tasks = ("super_resolution",)
    metrics = ("psnr", "ssim", *SHARPNESS_METRICS)
    default_n = 100
    help = "PSNR/SSIM on the BT.601 Y channel, scale px shaved, sharpness ratios to HR, PIL bicubic as baseline"

    def applies(self, model: Any, data: str) -> bool:
        """Every super-resolution model."""
        return True

    def evaluate(self, model: Any, ctx: EvalContext) -> Evaluation:
        """The first N pairs of the test split."""
        upscaler = require(model, Upscaler, purpose="the sr evaluator")
        out = Evaluation()
        scale = int(upscaler.scale)
        ds = ctx.dataset(model, "test")
        idx = list(range(min(ctx.n, len(ds))))
        ours, bic = [], []
        sharp: dict[str, list[dict[str, torch.Tensor]]] = {"ours": [], "bicubic": [], "hr": []}
        for batch in iter_batches(ds, idx, ctx.batch_size):
            lr, hr = batch["lr"], batch["hr"]
            pred = pm1_to_255(upscaler.upscale(to_pm1(lr, ctx.device)).cpu())
            hr255 = hr.to(torch.float64)
            lr8 = lr.to(torch.uint8) if lr.dtype == torch.uint8 else pm1_to_255(lr).to(torch.uint8)
            up = bicubic_upsample(lr8, hr.shape[-2:])
            # SSIM's 11x11 window needs 11 pixels left after the shave; tiny test crops do not have them.
            with_ssim = min(hr.shape[-2:]) - 2 * scale >= 11
            if not with_ssim and ctx.wants("ssim"):
                small = f"SSIM skipped: {hr.shape[-1]}x{hr.shape[-2]} images less {scale} px per border are under 11x11"
                if small not in out.notes:
                    out.notes.append(small)
            # The shave of the PSNR protocol, where the crop keeps enough pixels to measure (tiny test crops do not).
            shave = scale if min(hr.shape[-2:]) > 2 * scale + 2 else 0
            crop = (..., slice(shave, hr.shape[-2] - shave), slice(shave, hr.shape[-1] - shave))
            for key, images in (("ours", pred), ("bicubic", up), ("hr", hr255)):
                sharp[key].append(sharpness_rows(images[crop]))
            gray = batch.get("gray", torch.zeros(len(hr), dtype=torch.bool))
            for rows, p in ((ours, pred), (bic, up)):
                preds, refs = _sr_protocol_views(p, hr255, gray)
                row = {"psnr": psnr_per_image(preds, refs, y_channel=True, shave=scale)}
                if with_ssim:
                    row["ssim"] = ssim_per_image(preds, refs, y_channel=True, shave=scale)
                rows.append(row)

        def ratios(key: str) -> dict[str, float]:
            return {
                k: sharpness_ratio([r[k] for r in sharp[key]], [r[k] for r in sharp["hr"]])
                for k in SHARPNESS_METRICS
                if ctx.wants(k)
            }

        out.scores.update({**mean_rows(ours, ctx.metrics), **ratios("ours")})
        out.baselines["bicubic"] = {**mean_rows(bic, ctx.metrics), **ratios("bicubic")}
        out.provenance["image"] = {
            "protocol": f"Y channel of ITU-R BT.601 YCbCr, {scale} px shaved off each border, peak 255, SSIM "
            "Gaussian 11x11 sigma 1.5; grad-ratio / hf-ratio = mean gradient magnitude / spectral energy above half "
            "the Nyquist frequency of the RGB outputs over that of the HR images, same shave (1 = as sharp as HR); "
            "bicubic = PIL BICUBIC upsampling of the uint8 LR",
            "reference": f"{ctx.data} test split, items 0..{len(idx) - 1}",
            "scale": scale,
            "n": len(idx),
        }
        return out


# ---- anomaly ---------------------------------------------------------------------------------------------------------


class AnomalyEvaluator:
    """AUROC and AUPRC of the model's anomaly scores on the labelled test split; chance as the baseline."""

    name = "anomaly"
    tasks = ("anomaly",)
    metrics = ("auroc", "auprc")
    default_n = 100_000  # the whole test split
    help = "AUROC/AUPRC of score(images) on the test split (label 1 = anomalous)"

    def applies(self, model: Any, data: str) -> bool:
        """Every anomaly model."""
        return True

    def evaluate(self, model: Any, ctx: EvalContext) -> Evaluation:
        """The first N items of the test split."""
        scorer = require(model, AnomalyScorer, purpose="the anomaly evaluator")
        ds = ctx.dataset(model, "test")
        idx = list(range(min(ctx.n, len(ds))))
        scores, labels = [], []
        for batch in iter_batches(ds, idx, ctx.batch_size):
            scores.append(scorer.score(to_pm1(batch["image"], ctx.device)).reshape(-1).float().cpu())
            labels.append(batch["label"].reshape(-1).cpu())
        s, y = torch.cat(scores), torch.cat(labels)
        out = Evaluation()
        if ctx.wants("auroc"):
            out.scores["auroc"] = auroc(s, y)
        if ctx.wants("auprc"):
            out.scores["auprc"] = auprc(s, y)
        out.baselines["chance"] = {"auroc": 0.5, "auprc": float(y.double().mean())}
        out.provenance["anomaly"] = {
            "protocol": "higher score = more anomalous; label 1 = anomalous; AUROC = Mann-Whitney with mid-ranks, "
            "AUPRC = step-wise average precision (scikit-learn's definitions)",
            "reference": f"{ctx.data} test split, items 0..{len(idx) - 1} ({int(y.sum())} anomalous)",
            "n": len(idx),
        }
        return out


# ---- text to image ---------------------------------------------------------------------------------------------------


class ScenesEvaluator:
    """R-precision and attribute accuracy of text-to-image models on ``shapes-captions``, judged by the scene-attribute
    classifier of :mod:`ganzoo.metrics.scenes`, trained on its own data seed and independent of the model.

    N images are generated from the first N val captions, ``runs`` times with fresh noise. **R-precision**: each
    image ranks its caption among 100 (1 true + 99 drawn from the val caption pool among captions of *other*
    scenes, fresh per run) by the classifier's log-likelihood of the attributes each caption states; a tie is a
    miss. **Attributes**: per-attribute accuracy of what the classifier reads against what the caption says, with
    two chance levels (uniform ``1/K``, and images generated from shuffled captions) and the margin over the larger
    one in percentage points. Real val images give the ceiling of both.

    :param runs: repetitions with fresh noise and distractors.
    :param recipe: the classifier's training recipe (default :data:`ganzoo.metrics.scenes.DEFAULT_RECIPE`).
    :param min_accuracy: the classifier's mean held-out accuracy floor (default
        :data:`ganzoo.metrics.scenes.DEFAULT_MIN_ACCURACY`); below it the scores are skipped with a note, or refused
        when asked for by name.
    """

    name = "scenes"
    tasks = ("text_to_image",)
    metrics = ("r-precision", "attributes")
    default_n = 1000
    headline = "r-precision"
    help = "shapes-captions: R-precision and attribute accuracy read by an independently trained scene classifier"
    candidates = 100
    # The caption pool of the distractors: the whole val split (2,000 scenes).
    pool_size = 2000

    def __init__(self, runs: int = 10, recipe: Any = None, min_accuracy: float | None = None) -> None:
        self.runs, self.recipe, self.min_accuracy = runs, recipe, min_accuracy

    def applies(self, model: Any, data: str) -> bool:
        """Text-to-image models on ``shapes-captions`` (the only captions whose scenes are known)."""
        return spec_name(data) == "shapes-captions" and isinstance(model, TextToImageGenerator)

    def estimate_seconds(self, model: Any, ctx: EvalContext) -> float | None:
        """The classifier's training when it is not cached yet; the generation cost is the model's own."""
        from ganzoo.metrics.scenes import scene_cache_path

        path = scene_cache_path(int(model.image_size), int(getattr(model, "channels", 3)), self._recipe())
        return None if path.is_file() else SCENE_TRAIN_SECONDS

    def _recipe(self) -> Any:
        from ganzoo.metrics import scenes

        return self.recipe or scenes.DEFAULT_RECIPE

    def _generate(self, model: Any, captions: list[str], seed: int, batch_size: int) -> torch.Tensor:
        out = []
        for i in range(0, len(captions), batch_size):
            imgs = model.generate_from_captions(captions[i : i + batch_size], seed=seed * 10_000 + i // batch_size)
            out.append(imgs.float().cpu())
        return torch.cat(out)

    def evaluate(self, model: Any, ctx: EvalContext) -> Evaluation:
        """Scores on the first N captions of the val split of ``ctx.data``."""
        from ganzoo.data.captions import ATTR_CLASSES, ATTR_NAMES
        from ganzoo.metrics.scenes import (
            DEFAULT_MIN_ACCURACY,
            SceneClassifierError,
            attribute_accuracy,
            caption_attrs,
            get_scene_classifier,
            scene_r_precision,
            targets_of,
        )

        model = require(model, TextToImageGenerator, purpose="the scenes evaluator")
        size, channels = int(model.image_size), int(getattr(model, "channels", 3))
        key = f"scenes:{size}:{channels}"
        if key not in ctx.shared:
            try:
                floor = self.min_accuracy if self.min_accuracy is not None else DEFAULT_MIN_ACCURACY
                ctx.shared[key] = get_scene_classifier(
                    size, channels, recipe=self._recipe(), min_accuracy=floor, log=ctx.log, progress=ctx.progress
                ).to(ctx.device)
            except SceneClassifierError as e:
                if ctx.explicit:
                    raise
                return Evaluation(notes=[f"scene metrics skipped: {e}"])
        clf = ctx.shared[key]
        ds = ctx.dataset(model, "val")
        pool_n = min(len(ds), max(ctx.n, self.pool_size))
        batches = list(iter_batches(ds, list(range(pool_n)), ctx.batch_size))
        pool_captions = [c for b in batches for c in b["caption"]]
        pool = caption_attrs(pool_captions)
        n = min(ctx.n, pool_n)
        captions, true = pool_captions[:n], pool[:n]
        real = torch.cat([b["image"] for b in batches])[:n]
        # Image i of the baseline is drawn from caption shuffle[i] and judged against caption i.
        shuffle = torch.randperm(n, generator=torch.Generator().manual_seed(ctx.seed + 99)).tolist()
        shuffled = [captions[j] for j in shuffle]
        real_lp = clf.log_probs(real)

        def read(lp: list[torch.Tensor]) -> torch.Tensor:
            pred = torch.stack([x.argmax(1) for x in lp], 1)
            pred[:, 0] += 1
            return pred

        rp: dict[str, list[float]] = {"gen": [], "real": [], "shuf": []}
        acc: dict[str, list[dict[str, float]]] = {"gen": [], "shuf": []}
        t0 = time.perf_counter()
        with _bar(ctx, 2 * n * self.runs, "eval scenes") as bar:
            for r in range(self.runs):
                ctx.say(f"scenes run {r + 1}/{self.runs}: {n} images from val captions and {n} from shuffled ones")
                lps = {}
                for which, caps in (("gen", captions), ("shuf", shuffled)):
                    lps[which] = clf.log_probs(self._generate(model, caps, ctx.seed * 1000 + r, ctx.batch_size))
                    bar.update(n)
                    acc[which].append(attribute_accuracy(read(lps[which]), true))
                lps["real"] = real_lp
                for which, lp in lps.items():
                    # The same distractors for the model and its baselines within a run.
                    g = torch.Generator().manual_seed(ctx.seed * 1000 + r)
                    rp[which].append(scene_r_precision(lp, true, pool, g, self.candidates))
        ctx.say(f"scenes: {2 * n * self.runs} images generated and judged in {time.perf_counter() - t0:.1f} s")
        out = Evaluation()
        out.provenance["scenes"] = dict(clf.provenance)
        reference = f"{ctx.data} val split (data seed {ctx.data_seed}), captions 0..{n - 1}, pool 0..{pool_n - 1}"
        if ctx.wants("r-precision"):
            stats = {k: torch.tensor(v, dtype=torch.float64) for k, v in rp.items()}
            out.scores["r_precision"] = float(stats["gen"].mean())
            out.scores["r_precision_std"] = float(stats["gen"].std()) if self.runs > 1 else 0.0
            out.baselines.setdefault("real_images", {})["r_precision"] = float(stats["real"].mean())
            out.baselines.setdefault("shuffled_captions", {})["r_precision"] = float(stats["shuf"].mean())
            out.provenance["r-precision"] = {
                "protocol": f"top-1 retrieval of the true caption among {self.candidates} (1 true + "
                f"{self.candidates - 1} drawn per run from the caption pool among captions of other scenes) by the "
                "scene classifier's log-likelihood of the attributes each caption states; ties are misses; mean "
                f"and std over {self.runs} runs of fresh noise and distractors",
                "reference": reference,
                "n": n,
                "runs": self.runs,
            }
            if out.baselines["real_images"]["r_precision"] < REAL_R_PRECISION_FLOOR:
                out.notes.append(
                    f"real images reach only {out.baselines['real_images']['r_precision']:.3f} R-precision with the "
                    f"scene classifier (below {REAL_R_PRECISION_FLOOR}): its R-precision is not a trustworthy judge"
                )
        if ctx.wants("attributes"):
            gen = {k: sum(a[k] for a in acc["gen"]) / self.runs for k in acc["gen"][0]}
            shuf = {k: sum(a[k] for a in acc["shuf"]) / self.runs for k in acc["shuf"][0]}
            real_acc = attribute_accuracy(read(real_lp), true)
            uniform = {name: 1.0 / k for name, k in zip(ATTR_NAMES, ATTR_CLASSES, strict=True)}
            uniform["mean"] = sum(uniform.values()) / len(ATTR_NAMES)
            stated = targets_of(true) >= 0
            per_scene = torch.tensor([1.0 / k for k in ATTR_CLASSES], dtype=torch.float64)
            uniform["all_correct"] = float(torch.where(stated, per_scene, 1.0).prod(1).mean())
            for k in [*ATTR_NAMES, "mean", "all_correct"]:
                out.scores[f"attr_{k}"] = gen[k]
                out.baselines.setdefault("real_images", {})[f"attr_{k}"] = real_acc[k]
                out.baselines.setdefault("shuffled_captions", {})[f"attr_{k}"] = shuf[k]
                out.baselines.setdefault("chance", {})[f"attr_{k}"] = uniform[k]
            margins = {k: 100 * (gen[k] - max(uniform[k], shuf[k])) for k in ATTR_NAMES}
            for k in ATTR_NAMES:
                out.scores[f"attr_{k}_margin_pts"] = margins[k]
            out.scores["attr_min_margin_pts"] = min(margins.values())
            out.provenance["attributes"] = {
                "protocol": "per-attribute accuracy of what the scene classifier reads from each generated image "
                "against what its caption states (count, colour/shape/size/place of each shape, over the scenes "
                f"where the attribute exists), mean over {self.runs} runs; mean = over the 9 attributes, "
                "all_correct = every attribute of the scene right; margin_pts = percentage points above the larger "
                "of the two chance levels (uniform 1/K, images generated from shuffled captions)",
                "reference": reference,
                "n": n,
                "runs": self.runs,
            }
        return out


BUILTIN_EVALUATORS: tuple[type, ...] = (
    InceptionEvaluator,
    DomainEvaluator,
    Modes2DEvaluator,
    ImagePairsEvaluator,
    SREvaluator,
    AnomalyEvaluator,
    ScenesEvaluator,
)


def register_evaluators(register: Callable[..., None]) -> None:
    """Register the built-in evaluators through a ``ganzoo_register_evaluators`` ``register`` callback.

    :param register: the hook's callback.
    """
    for cls in BUILTIN_EVALUATORS:
        register(cls())
