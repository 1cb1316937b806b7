"""The core's evaluators, registered through ``ganzoo_register_evaluators`` (see :mod:`ganzoo.metrics.evaluators`).

| task | evaluator | metrics | default N |
| --- | --- | --- | --- |
| unconditional | ``inception`` | ``fid kid prdc`` (Inception-v3 FID network) | 1000 |
| unconditional | ``domain`` | ``fd-dom kid-dom prdc-dom classes`` (domain classifier) | 1000 |
| unconditional, 2D points | ``modes-2d`` | ``modes-2d`` (VEEGAN/PacGAN mode protocol) | 2500 |
| paired, unpaired | ``image-pairs`` | ``psnr ssim l1`` against ``b`` (paired) or ``b_true`` (unpaired) | 200 |
| super_resolution | ``sr`` | ``psnr ssim`` on the Y channel, ``scale`` px shaved | 100 |
| anomaly | ``anomaly`` | ``auroc auprc`` | the whole test split |
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch

from ganzoo.errors import ConfigError, GanzooError
from ganzoo.metrics.domain import DOMAIN_DATASETS, DomainClassifierError, get_domain_classifier
from ganzoo.metrics.evaluate import (
    FeatureSet,
    bicubic_upsample,
    distribution_scores,
    image_rows,
    iter_batches,
    iter_images,
    load_inception,
    mean_rows,
    noise_batches,
    spec_name,
    subset,
    to_pm1,
)
from ganzoo.metrics.evaluators import EvalContext, Evaluation
from ganzoo.metrics.image import pm1_to_255, psnr_per_image, ssim_per_image
from ganzoo.metrics.modes import mode_stats
from ganzoo.metrics.ranking import auprc, auroc
from ganzoo.tasks import AnomalyScorer, NoiseGenerator, Translator, Upscaler, require

__all__ = [
    "AnomalyEvaluator",
    "DomainEvaluator",
    "ImagePairsEvaluator",
    "InceptionEvaluator",
    "Modes2DEvaluator",
    "SREvaluator",
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


def _real_and_fake(model: Any, ctx: EvalContext, inception: Any, domain: Any, out: Evaluation) -> tuple:
    """Feature sets of N train images (the reference), N held-out images (the real-vs-real floor) and N samples."""
    n, seed = ctx.n, ctx.seed
    train_ds, split_note = ctx.dataset(model, "train"), "test"
    try:
        test_ds = ctx.dataset(model, "test")
    except GanzooError:
        test_ds = None
    if test_ds is None or spec_name(ctx.data) == "folder":
        # One folder has no held-out split: the floor compares two disjoint halves of it.
        perm = subset(len(train_ds), 2 * n, seed)
        ref_idx, floor_idx, floor_ds, split_note = perm[::2], perm[1::2], train_ds, "train (other half)"
    else:
        ref_idx, floor_idx, floor_ds = subset(len(train_ds), n, seed), subset(len(test_ds), n, seed + 1), test_ds
    ref, fake, floor = (FeatureSet(inception, domain, n) for _ in range(3))
    t0 = time.perf_counter()
    total, last = len(ref_idx) + len(floor_idx) + n, [t0]

    def progress() -> None:
        # Inception on a CPU is ~0.3-1 s per image, so long runs say where they are every half minute.
        now = time.perf_counter()
        if now - last[0] > 30:
            ctx.say(f"  {ref.num + floor.num + fake.num}/{total} images scored, {now - t0:.0f} s")
            last[0] = now

    what = "Inception" if inception is not None else "the domain classifier"
    ctx.say(f"scoring {total} images (N={n} generated, train reference, test floor) with {what} on {ctx.device}")
    for imgs in iter_images(train_ds, ref_idx, ctx.batch_size):
        ref.update(imgs)
        progress()
    for imgs in iter_images(floor_ds, floor_idx, ctx.batch_size):
        floor.update(imgs)
        progress()
    for imgs in noise_batches(model, n, seed, ctx.batch_size):
        if imgs.ndim != 4:
            raise ConfigError(f"{model.name} generated {tuple(imgs.shape)}; image metrics need (B, C, H, W)")
        fake.update(imgs)
        progress()
    ctx.say(
        f"features of {ref.num} + {floor.num} real and {fake.num} generated images in {time.perf_counter() - t0:.1f} s"
    )
    out.reference = {
        "data": ctx.data,
        "reference_split": f"train, {ref.num} items drawn with seed {seed}",
        "floor_split": f"{split_note}, {floor.num} items drawn with seed {seed + 1}",
        "generated": f"{fake.num} samples, noise seeds derived from {seed}",
    }
    if fake.num != n or ref.num < n:
        out.notes.append(f"asked for N={n}; used {fake.num} generated and {ref.num} reference images")
    return ref, fake, floor


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

    def evaluate(self, model: Any, ctx: EvalContext) -> Evaluation:
        """Scores against the train split, and the real-vs-real floor at the same N."""
        model = require(model, NoiseGenerator, purpose="the inception evaluator")
        out = Evaluation()
        inception, why = load_inception(ctx.inception_weights, device=ctx.device)
        if inception is None:
            if ctx.explicit:
                raise GanzooError(why or "Inception weights unavailable")
            out.notes.append(why or "Inception weights unavailable")
            return out
        out.provenance["inception"] = inception.provenance
        ref, fake, floor = _real_and_fake(model, ctx, inception, None, out)
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
            domain = get_domain_classifier(
                ctx.data, model.image_size, model.channels, min_accuracy=ctx.min_domain_accuracy, log=ctx.log
            ).to(ctx.device)
        except DomainClassifierError as e:
            if ctx.explicit:
                raise
            out.notes.append(f"domain metrics skipped: {e}")
            return out
        out.provenance["domain"] = domain.provenance
        ref, fake, floor = _real_and_fake(model, ctx, None, domain, out)
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
    """PSNR/SSIM/L1 of translations against ground truth: ``b`` for paired data, the hidden pairing ``b_true`` of
    unpaired data; the identity mapping is the baseline."""

    name = "image-pairs"
    tasks = ("paired", "unpaired")
    metrics = ("psnr", "ssim", "l1")
    default_n = 200
    help = "PSNR/SSIM/L1 (8-bit RGB) of a -> b translations against the ground truth, identity as baseline"

    def applies(self, model: Any, data: str) -> bool:
        """Every translation model (unpaired data without a hidden pairing gets a note)."""
        return True

    def evaluate(self, model: Any, ctx: EvalContext) -> Evaluation:
        """The first N items of the test split, translated a -> b."""
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
        ours, ident = [], []
        for batch in iter_batches(ds, idx, ctx.batch_size):
            a = to_pm1(batch["a"], ctx.device)
            b = to_pm1(batch[target], ctx.device)
            ours.append(image_rows(translator.translate(a, "a2b"), b))
            if a.shape == b.shape:
                ident.append(image_rows(a, b))
        out.scores.update(mean_rows(ours, ctx.metrics))
        if ident:
            out.baselines["identity"] = mean_rows(ident, ctx.metrics)
        out.provenance["image"] = {
            "protocol": "8-bit RGB (outputs rounded from [-1, 1] to 0..255), PSNR peak 255, SSIM Gaussian 11x11 "
            "sigma 1.5 on every channel, mean over images",
            "reference": f"{ctx.data} test split, items 0..{len(idx) - 1}, target {target!r}",
            "n": len(idx),
        }
        return out


class SREvaluator:
    """Y-channel PSNR/SSIM with ``scale`` pixels shaved (the SR literature's protocol) and the PIL-bicubic
    baseline."""

    name = "sr"
    tasks = ("super_resolution",)
    metrics = ("psnr", "ssim")
    default_n = 100
    help = "PSNR/SSIM on the BT.601 Y channel, scale px shaved, PIL bicubic as baseline"

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
            for rows, p in ((ours, pred), (bic, up)):
                row = {"psnr": psnr_per_image(p, hr255, y_channel=True, shave=scale)}
                if with_ssim:
                    row["ssim"] = ssim_per_image(p, hr255, y_channel=True, shave=scale)
                rows.append(row)
        out.scores.update(mean_rows(ours, ctx.metrics))
        out.baselines["bicubic"] = mean_rows(bic, ctx.metrics)
        out.provenance["image"] = {
            "protocol": f"Y channel of ITU-R BT.601 YCbCr, {scale} px shaved off each border, peak 255, SSIM "
            "Gaussian 11x11 sigma 1.5; bicubic = PIL BICUBIC upsampling of the uint8 LR",
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


BUILTIN_EVALUATORS: tuple[type, ...] = (
    InceptionEvaluator,
    DomainEvaluator,
    Modes2DEvaluator,
    ImagePairsEvaluator,
    SREvaluator,
    AnomalyEvaluator,
)


def register_evaluators(register: Callable[..., None]) -> None:
    """Register the built-in evaluators through a ``ganzoo_register_evaluators`` ``register`` callback.

    :param register: the hook's callback.
    """
    for cls in BUILTIN_EVALUATORS:
        register(cls())
