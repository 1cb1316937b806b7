"""The built-in metrics, registered through ``ganzoo_register_metrics``, so ``registry.get("metric", "psnr")`` works.

Every registered metric is a :class:`ganzoo.registry.MetricEntry` whose ``obj`` is a callable following the calling
convention of its ``kind`` (:class:`ganzoo.registry.MetricKind`: paired, distribution, points, scores, retrieval).
``ganzoo metrics NAME A B`` accepts every metric whose kind compares image sets, a plugin's included.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from torch import Tensor

from ganzoo.metrics.image import l1_per_image, psnr_per_image, ssim_per_image
from ganzoo.metrics.ranking import auprc, auroc, r_precision

__all__ = ["register_metrics"]

_ALL_IMAGE_TASKS = ("paired", "unpaired", "super_resolution")
_GRAD_HELP = "mean gradient magnitude of pred / of ref (1 = as sharp; blur < 1)"
_HF_HELP = "spectral energy above half Nyquist of pred / of ref (1 = as sharp; blur < 1)"


def psnr_metric(pred: list[Tensor], ref: list[Tensor], *, y_channel: bool = False, shave: int = 0) -> dict[str, Any]:
    """PSNR (dB, peak 255) of 0..255 images; ``y_channel`` + ``shave`` give the SR protocol."""
    v = psnr_per_image(pred, ref, y_channel=y_channel, shave=shave)
    return {"psnr": float(v.mean()), "per_image": v.tolist()}


def ssim_metric(pred: list[Tensor], ref: list[Tensor], *, y_channel: bool = False, shave: int = 0) -> dict[str, Any]:
    """SSIM (Wang et al. 2004, 11x11 Gaussian window) of 0..255 images."""
    v = ssim_per_image(pred, ref, y_channel=y_channel, shave=shave)
    return {"ssim": float(v.mean()), "per_image": v.tolist()}


def l1_metric(pred: list[Tensor], ref: list[Tensor], *, y_channel: bool = False, shave: int = 0) -> dict[str, Any]:
    """Mean absolute difference on the 0..255 scale (``y_channel``/``shave`` as for PSNR)."""
    from ganzoo.metrics.image import _prepare

    ps = [_prepare(p[None] if p.ndim == 3 else p, 255.0, y_channel, shave)[0] for p in pred]
    rs = [_prepare(r[None] if r.ndim == 3 else r, 255.0, y_channel, shave)[0] for r in ref]
    v = l1_per_image(ps, rs)
    return {"l1": float(v.mean()), "per_image": v.tolist()}


def _sharpness_metric(name: str) -> Callable[..., dict[str, Any]]:
    from ganzoo.metrics.sharpness import sharpness_ratio, sharpness_rows

    def metric(pred: list[Tensor], ref: list[Tensor], *, y_channel: bool = False, shave: int = 0) -> dict[str, Any]:
        from ganzoo.metrics.image import _prepare

        ps = [sharpness_rows(_prepare(p[None] if p.ndim == 3 else p, 255.0, y_channel, shave)[0])[name] for p in pred]
        rs = [sharpness_rows(_prepare(r[None] if r.ndim == 3 else r, 255.0, y_channel, shave)[0])[name] for r in ref]
        per_image = [
            float(p.double().sum() / r.double().sum()) if float(r.sum()) > 0 else float("nan") for p, r in zip(ps, rs)
        ]
        return {name: sharpness_ratio(ps, rs), "per_image": per_image}

    metric.__doc__ = (
        f"{name} of 0..255 images: the mean over ``pred`` of the per-image measure divided by its mean over ``ref`` "
        "(1 = as sharp as the reference)."
    )
    return metric


def _features(
    batches_a: Iterable[Tensor],
    batches_b: Iterable[Tensor],
    inception: Any,
    domain: Any,
    log: Callable[[str], None] | None = None,
    precision: str = "fp32",
    cache: bool = True,
) -> tuple:
    """Feature sets of two image sets; a set that carries a ``cache_identity`` (a data-spec subset) is read from and
    written to the feature cache. Returns ``(a, b, cache_info)``."""
    import time

    from ganzoo.metrics.cache import KEY_VERSION, FeatureCache
    from ganzoo.metrics.evaluate import FeatureSet

    store = FeatureCache(enabled=cache, log=log)
    name = "inception" if inception is not None else "domain"
    extractor = inception if inception is not None else domain
    ident = {k: extractor.provenance.get(k) for k in ("extractor", "weights_sha256", "resize", "quantize_uint8")}
    sets, infos = [], {}
    t0 = last = time.perf_counter()
    for label, batches in (("a", batches_a), ("b", batches_b)):
        fs = FeatureSet(inception, domain, keep=100_000, precision=precision)

        def compute(fs: FeatureSet = fs, batches: Iterable[Tensor] = batches, label: str = label) -> dict:
            nonlocal last
            for x in batches:
                fs.update(x)
                now = time.perf_counter()
                if log is not None and now - last > 30:  # Inception on a CPU: long runs report every half minute
                    log(f"  {label.upper()}: {fs.num} images scored, {now - t0:.0f} s")
                    last = now
            return fs.state_tensors()

        identity = getattr(batches, "cache_identity", None)
        if identity is None:
            compute()
            infos[label] = {"hit": False, "cache": "folder (not cached)"}
        else:
            key = {"version": KEY_VERSION, **identity, "extractor": {"name": name, **ident}, "precision": precision}
            key["keep"] = fs.keep
            tensors, infos[label] = store.get_or_compute(key, compute)
            fs.load_state_tensors(tensors)
        sets.append(fs)
    return sets[0], sets[1], infos


def _inception_metric(groups: set[str]) -> Callable[..., dict[str, Any]]:
    def metric(
        a: Iterable[Tensor],
        b: Iterable[Tensor],
        *,
        device: str = "cpu",
        weights: str | None = None,
        resize: str = "tf-bilinear",
        seed: int = 0,
        log: Callable[[str], None] | None = None,
        precision: str = "auto",
        cache: bool = True,
        **_: Any,
    ) -> dict[str, Any]:
        from ganzoo.errors import GanzooError
        from ganzoo.metrics.evaluate import distribution_scores, load_inception, resolve_feature_precision

        prec = resolve_feature_precision(precision, device)
        net, why = load_inception(weights, resize, device)
        if net is None:
            raise GanzooError(why or "Inception weights unavailable")
        fa, fb, infos = _features(a, b, net, None, log, prec, cache)
        out: dict[str, Any] = distribution_scores(fa, fb, groups, seed)
        prov = {**net.provenance, "precision": prec, "features_cache": infos}
        out.update({"n_a": fa.num, "n_b": fb.num, "provenance": prov})
        return out

    return metric


def _domain_metric(groups: set[str]) -> Callable[..., dict[str, Any]]:
    def metric(
        a: Iterable[Tensor],
        b: Iterable[Tensor],
        *,
        domain: str | None = None,
        image_size: int = 32,
        channels: int = 3,
        min_accuracy: float = 0.95,
        device: str = "cpu",
        seed: int = 0,
        log: Callable[[str], None] | None = None,
        precision: str = "auto",
        cache: bool = True,
        **_: Any,
    ) -> dict[str, Any]:
        from ganzoo.errors import ConfigError
        from ganzoo.metrics.domain import get_domain_classifier
        from ganzoo.metrics.evaluate import distribution_scores, resolve_feature_precision

        if not domain:
            raise ConfigError("domain-classifier metrics need the dataset the classifier learns: domain='shapes'")
        prec = resolve_feature_precision(precision, device)
        clf = get_domain_classifier(domain, image_size, channels, min_accuracy=min_accuracy, log=log).to(device)
        fa, fb, infos = _features(a, b, None, clf, log, prec, cache)
        out: dict[str, Any] = distribution_scores(fa, fb, groups, seed)
        prov = {**clf.provenance, "precision": prec, "features_cache": infos}
        out.update({"n_a": fa.num, "n_b": fb.num, "provenance": prov})
        return out

    return metric


def modes_2d_metric(
    samples: Tensor, *, data: str | None = None, centres: Tensor | None = None, std: float | None = None
) -> dict[str, Any]:
    """Modes captured, high-quality fraction and reverse KL of 2D samples (``data`` "ring8"/"grid25" or explicit
    ``centres`` and ``std``)."""
    from ganzoo.data.toy2d import GRID25_STD, RING8_STD, grid25_modes, ring8_modes
    from ganzoo.errors import ConfigError
    from ganzoo.metrics.modes import mode_stats

    if data is not None:
        known = {"ring8": (ring8_modes, RING8_STD), "grid25": (grid25_modes, GRID25_STD)}
        if data not in known:
            raise ConfigError(f"modes-2d knows data 'ring8' and 'grid25', got {data!r}; or pass centres and std")
        centres, std = known[data][0](), known[data][1]
    if centres is None or std is None:
        raise ConfigError("modes-2d needs data='ring8'/'grid25', or centres and std")
    return dict(mode_stats(samples, centres, std))


def _prdc_help() -> str:
    return "precision/recall (Kynkaanniemi 2019), density/coverage (Naeem 2020) on Inception features, k=5"


def register_metrics(register: Callable[..., None]) -> None:
    """Register the built-in metrics through a ``ganzoo_register_metrics`` ``register`` callback."""
    uncond = ("unconditional",)
    table: list[tuple[str, Callable[..., Any], tuple[str, ...], str, str]] = [
        ("psnr", psnr_metric, _ALL_IMAGE_TASKS, "paired", "PSNR in dB (peak 255); SR: Y channel, shave=scale"),
        ("ssim", ssim_metric, _ALL_IMAGE_TASKS, "paired", "SSIM, 11x11 Gaussian window sigma 1.5"),
        ("l1", l1_metric, _ALL_IMAGE_TASKS, "paired", "mean absolute error on 0..255"),
        ("grad-ratio", _sharpness_metric("grad-ratio"), _ALL_IMAGE_TASKS, "paired", _GRAD_HELP),
        ("hf-ratio", _sharpness_metric("hf-ratio"), _ALL_IMAGE_TASKS, "paired", _HF_HELP),
        ("fid", _inception_metric({"fid"}), uncond, "distribution", "Frechet Inception Distance (Inception-v3 2015)"),
        ("kid", _inception_metric({"kid"}), uncond, "distribution", "Kernel Inception Distance, unbiased MMD^2"),
        ("prdc", _inception_metric({"prdc"}), uncond, "distribution", _prdc_help()),
        ("fd-dom", _domain_metric({"fd-dom"}), uncond, "distribution", "Frechet distance, domain features (not FID)"),
        ("kid-dom", _domain_metric({"kid-dom"}), uncond, "distribution", "KID on domain-classifier features (not KID)"),
        ("modes-2d", modes_2d_metric, uncond, "points", "2D mixtures: modes, high-quality %, reverse KL (PacGAN)"),
        ("auroc", auroc, ("anomaly",), "scores", "area under the ROC curve (ties as scikit-learn)"),
        ("auprc", auprc, ("anomaly",), "scores", "average precision (step-wise, as scikit-learn)"),
        (
            "r-precision",
            r_precision,
            ("text_to_image",),
            "retrieval",
            "top-1 caption retrieval among 100 (Xu et al. 2018); `ganzoo eval` ranks by a scene classifier",
        ),
    ]
    for name, fn, tasks, kind, text in table:
        register(name, fn, kind=kind, tasks=tasks, help=text)


def folder_metric_names() -> list[str]:
    """Registered metrics that ``ganzoo metrics NAME A B`` can compute between two image sets."""
    from ganzoo import registry

    return sorted(n for n, e in registry.metrics().items() if e.kind.compares_image_sets)
