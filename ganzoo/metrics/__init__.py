"""Metrics of every task: feature-distribution scores, image fidelity, mode coverage and ranking, and the
evaluators that ``ganzoo eval`` runs per task (:mod:`ganzoo.metrics.evaluators`, :func:`evaluate`).

The metric functions are pure computation on tensors; the Inception weights loader lives in
:mod:`ganzoo.metrics.inception`.
"""

from ganzoo.metrics.domain import DomainClassifier, DomainClassifierError, get_domain_classifier
from ganzoo.metrics.evaluate import evaluate, evaluators_for
from ganzoo.metrics.evaluators import EvalContext, Evaluation, Evaluator
from ganzoo.metrics.frechet import FeatureStats, frechet_distance, kid, precision_recall_density_coverage
from ganzoo.metrics.image import (
    image_scores,
    l1,
    l1_per_image,
    pm1_to_255,
    psnr,
    psnr_per_image,
    psnr_pm1,
    rgb_to_y,
    ssim,
    ssim_per_image,
    ssim_pm1,
)
from ganzoo.metrics.inception import (
    InceptionFeatures,
    WeightsLocation,
    download_file,
    find_inception_weights,
    load_inception_torchscript,
    tf1_bilinear_resize,
)
from ganzoo.metrics.modes import class_histogram_stats, grid_centres, mode_stats, ring_centres, stacked_classes
from ganzoo.metrics.ranking import auprc, auroc, r_precision

__all__ = [
    "DomainClassifier",
    "DomainClassifierError",
    "EvalContext",
    "Evaluation",
    "Evaluator",
    "FeatureStats",
    "InceptionFeatures",
    "WeightsLocation",
    "auprc",
    "auroc",
    "class_histogram_stats",
    "download_file",
    "evaluate",
    "evaluators_for",
    "find_inception_weights",
    "frechet_distance",
    "get_domain_classifier",
    "grid_centres",
    "image_scores",
    "kid",
    "l1",
    "l1_per_image",
    "load_inception_torchscript",
    "mode_stats",
    "pm1_to_255",
    "precision_recall_density_coverage",
    "psnr",
    "psnr_per_image",
    "psnr_pm1",
    "r_precision",
    "ring_centres",
    "rgb_to_y",
    "ssim",
    "ssim_per_image",
    "ssim_pm1",
    "stacked_classes",
    "tf1_bilinear_resize",
]
