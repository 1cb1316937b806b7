"""The evaluator contract: what ``ganzoo eval`` runs for a model's task.

An evaluator scores a trained model with one protocol (FID/KID/PRDC against real images, PSNR/SSIM of a translator
against ground truth, AUROC of an anomaly scorer ...). Evaluators are registered per task through the
``ganzoo_register_evaluators`` hook; :func:`ganzoo.metrics.evaluate` runs every registered evaluator of the model's
task whose :meth:`Evaluator.applies` accepts the model and data, and merges what they return. A plugin adds a
metric to ``ganzoo eval`` by registering an evaluator:

.. code-block:: python

    class MaxAbs:
        name = "max-abs"
        tasks = ("paired",)
        metrics = ("max-abs",)
        default_n = 200
        help = "largest pixel difference to the target"

        def applies(self, model, data):
            return True

        def evaluate(self, model, ctx):
            ...
            return Evaluation(scores={"max_abs": value})


    @ganzoo.hookimpl
    def ganzoo_register_evaluators(register):
        register(MaxAbs())
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from ganzoo.metrics.domain import DEFAULT_MIN_ACCURACY

__all__ = ["EvalContext", "Evaluation", "Evaluator"]


@dataclass
class EvalContext:
    """What an evaluator is asked to do, and the state shared by the evaluators of one :func:`evaluate` call."""

    data: str
    """Data spec of the reference data (``shapes``, ``ring8``, ``sr-pairs:DIR`` ...)."""
    n: int
    """Sample count N: generated and real sets both have N items (the evaluator's ``default_n`` unless given)."""
    seed: int = 0
    """Noise seed of the samples and seed of the real subsets."""
    data_seed: int = 0
    """Seed of the dataset streams (the training seed)."""
    device: str = "cpu"
    """Where the model and feature extractors run."""
    batch_size: int = 64
    """Images per forward pass."""
    metrics: frozenset[str] = frozenset()
    """The metrics of this evaluator that were selected (a subset of its ``metrics``)."""
    explicit: bool = False
    """Whether the user named the metrics: a metric that cannot be computed then raises instead of adding a note."""
    inception_weights: str | None = None
    """Path of the FID Inception weights (None: the default search)."""
    min_domain_accuracy: float = DEFAULT_MIN_ACCURACY
    """Domain classifiers below this held-out accuracy refuse to score."""
    log: Callable[[str], None] | None = None
    """Receives progress lines (None: quiet)."""
    cache: bool = True
    """Read and write real-data feature statistics in the feature cache (:mod:`ganzoo.metrics.cache`)."""
    feature_precision: str = "auto"
    """``fp32``, ``bf16`` (autocast) or ``auto`` (per extractor: ``ganzoo.metrics.evaluate.AUTO_PRECISION``)."""
    progress: bool = False
    """Show a progress bar with an ETA on stderr for long feature extractions."""
    shared: dict[str, Any] = field(default_factory=dict)
    """State shared by every evaluator of one call, keyed by string: the datasets built so far (``dataset:SPLIT``);
    a cache of real-data features belongs here too."""

    def wants(self, metric: str) -> bool:
        """Whether ``metric`` (one of the evaluator's ``metrics``) was selected.

        :param metric: a metric name.
        """
        return metric in self.metrics

    def say(self, message: str) -> None:
        """Send a progress line to :attr:`log` (if any).

        :param message: one line.
        """
        if self.log is not None:
            self.log(message)

    def dataset(self, model: Any, split: str) -> Any:
        """The ``split`` of :attr:`data` built for ``model``, built once per call and shared.

        :param model: the variant being evaluated (its task, size and data options shape the dataset).
        :param split: ``"train"``, ``"val"`` or ``"test"``.
        :returns: a map-style dataset of the task's batch schema.
        :raises ganzoo.GanzooError: when the data has no such split or does not fit the model.
        """
        key = f"dataset:{split}"
        if key not in self.shared:
            from ganzoo.train.data import build_dataset

            self.shared[key] = build_dataset(self.data, model, split=split, seed=self.data_seed)
        return self.shared[key]

    def feature_cache(self) -> Any:
        """The :class:`ganzoo.metrics.cache.FeatureCache` of this call (disabled when :attr:`cache` is off)."""
        if "feature_cache" not in self.shared:
            from ganzoo.metrics.cache import FeatureCache

            self.shared["feature_cache"] = FeatureCache(enabled=self.cache, log=self.log)
        return self.shared["feature_cache"]

    def for_evaluator(self, n: int, metrics: frozenset[str]) -> EvalContext:
        """A copy for one evaluator, sharing :attr:`shared`.

        :param n: the evaluator's N.
        :param metrics: its selected metrics.
        """
        return dataclasses.replace(self, n=n, metrics=metrics)


@dataclass
class Evaluation:
    """What one evaluator returns; :func:`ganzoo.metrics.evaluate` merges the evaluations of a call."""

    scores: dict[str, float] = field(default_factory=dict)
    """Flat numbers of the model, keyed by score name (``fid``, ``psnr``, ``precision_dom``)."""
    baselines: dict[str, dict[str, float]] = field(default_factory=dict)
    """Baseline name (``real_vs_real``, ``identity``, ``bicubic``, ``chance``) -> the same keys as ``scores``."""
    notes: list[str] = field(default_factory=list)
    """What was skipped or is worth knowing, one line each."""
    provenance: dict[str, Any] = field(default_factory=dict)
    """How the scores were made (extractor and weights hash, protocol, reference split), keyed by a section name."""
    reference: dict[str, str] = field(default_factory=dict)
    """The real sets used (``reference_split``, ``floor_split`` ...), when the evaluator draws them."""


@runtime_checkable
class Evaluator(Protocol):
    """One evaluation protocol for one or more tasks, registered with ``ganzoo_register_evaluators``.

    Two optional members are read with ``getattr``:

    - ``headline: str``, the metric of :attr:`metrics` that training-time evaluation (``ganzoo train --eval-every``)
      records (default: the first of :attr:`metrics`);
    - ``estimate_seconds(model, ctx) -> float | None``, the expected cost of :meth:`evaluate` with ``ctx``;
      :func:`ganzoo.metrics.evaluate` announces an evaluation expected to take over a minute, with what makes it
      cheaper.
    """

    name: str
    """Unique name, lowercase (``fid``, ``image-pairs``)."""
    tasks: tuple[str, ...]
    """The :class:`ganzoo.Task` values it scores."""
    metrics: tuple[str, ...]
    """The metric names it computes, as selected with ``ganzoo eval --metrics`` (``fid``, ``kid``, ``prdc``)."""
    default_n: int
    """N when the user gives none."""
    help: str
    """One line for ``ganzoo eval --help`` listings and the docs."""

    def applies(self, model: Any, data: str) -> bool:
        """Whether this evaluator can score ``model`` on ``data`` (e.g. the 2D mode protocol: point data only).

        :param model: a variant of one of :attr:`tasks`.
        :param data: the reference data spec.
        """
        ...

    def evaluate(self, model: Any, ctx: EvalContext) -> Evaluation:
        """Score ``model`` (already in eval mode on ``ctx.device``, gradients off).

        :param model: a variant of one of :attr:`tasks`, implementing that task's protocol of :mod:`ganzoo.tasks`.
        :param ctx: data, N, seeds, device, the selected metrics and the shared state.
        :returns: the scores, baselines, notes and provenance.
        :raises ganzoo.GanzooError: when an explicitly selected metric cannot be computed.
        """
        ...
