"""Training-time evaluation (``TrainConfig.eval_every``): the task's headline metric of the EMA model, recorded in
``log.jsonl``, TensorBoard and the second panel of ``losses.png``, so quality over time is visible.

The headline metric is the ``headline`` metric of the first evaluator of the model's task that applies and can
compute it (:func:`headline_choices`): FID where the Inception weights exist, else FD-dom, for unconditional images;
the mode protocol for 2D points; PSNR for translation and super-resolution; AUROC for anomaly detection;
R-precision for text-to-image. The choice is made at the first evaluation and kept for the run. Each evaluation
draws the real data, subsets and noise as ``ganzoo eval`` does by default (seed 0, whatever the run's seed), so the
last record equals ``ganzoo eval RUN -n EVAL_N --metrics METRIC`` (up to float rounding: 5e-5 relative in a test).
Real-data statistics come from the feature cache (the same entries as ``ganzoo eval``'s), so after the first
evaluation each one extracts only the N samples.

Evaluation must not change training: it runs on the main process with the EMA weights swapped in, in eval mode,
with fixed noise seeds, and the global RNG states (CPU and CUDA) are restored afterwards, so a run with evaluation
trains bit for bit like one without, and resumes exactly.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any, Protocol

import torch

from ..errors import GanzooError
from ..variant import GANVariant
from .config import TrainConfig
from .runlog import RunLog

__all__ = ["TrainingEvaluation", "headline_choices", "preserved_rng"]


def headline_choices(model: Any, data: str) -> list[tuple[str, str]]:
    """``(evaluator, metric)`` pairs to try, in order: each applicable evaluator's ``headline`` metric (default its
    first metric), the core's evaluators first.

    :param model: the variant.
    :param data: the data spec.
    """
    from ..metrics.evaluate import evaluators_for

    return [(e.name, getattr(e, "headline", e.metrics[0])) for e in evaluators_for(model, data)]


@contextlib.contextmanager
def preserved_rng(device: torch.device) -> Iterator[None]:
    """Restore the global CPU (and ``device``'s CUDA) RNG state on exit, whatever ran inside.

    :param device: the training device.
    """
    cpu = torch.get_rng_state()
    cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
    try:
        yield
    finally:
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state(cuda, device)


class RunningTrainer(Protocol):
    """What the evaluation reads of the trainer that runs it (structurally; the trainer imports this module)."""

    config: TrainConfig
    variant: GANVariant
    data_spec: str
    device: torch.device
    batch_size: int
    main: bool
    log: RunLog

    def _exported_weights(self) -> contextlib.AbstractContextManager: ...


class TrainingEvaluation:
    """Evaluates ``trainer``'s model every ``config.eval_every`` steps and at the last step.

    :param trainer: the running trainer (its config, variant, EMA, data spec, device and run log).
    """

    def __init__(self, trainer: RunningTrainer) -> None:
        self.trainer = trainer
        self.every = int(trainer.config.eval_every)
        self.chosen: str | None = None  # the metric name, fixed at the first evaluation

    def due(self, step: int) -> bool:
        """Whether an evaluation is due after ``step`` (main process only).

        :param step: the step just completed.
        """
        t = self.trainer
        return bool(self.every) and t.main and (step % self.every == 0 or step == t.config.steps)

    def maybe_run(self, step: int) -> dict[str, Any] | None:
        """Evaluate and record when due.

        :param step: the step just completed.
        :returns: the record written, or None.
        """
        return self.run(step) if self.due(step) else None

    def _evaluate(self, metric: str) -> dict[str, Any]:
        from ..metrics.evaluate import evaluate

        t = self.trainer
        cfg = t.config
        # The seeds are `ganzoo eval`'s defaults, not the run's: every run of a task is scored on the same real data,
        # subsets and noise, so seeds compare like for like, the real sets' cache entries are shared with `ganzoo
        # eval`, and the last record is the score `ganzoo eval RUN -n EVAL_N --metrics METRIC` reports (up to float
        # rounding: 5e-5 relative in a tiny run, whose generated images after training were bit-equal).
        return evaluate(
            t.variant,
            data=t.data_spec,
            metrics=[metric],
            n=cfg.eval_n,
            seed=0,
            device=str(t.device),
            batch_size=max(t.batch_size, 64),
            data_seed=0,
            progress=False,
        )

    def run(self, step: int) -> dict[str, Any]:
        """Evaluate the EMA model now and record ``eval/SCORE`` (and ``eval/SCORE_floor``, the real-vs-real value)
        at ``step``.

        :param step: the step just completed.
        :returns: the record written to ``log.jsonl``.
        :raises GanzooError: when no evaluator of the task can score the model.
        """
        t = self.trainer
        v = t.variant
        was_training = v.training
        t0 = time.perf_counter()
        errors: list[str] = []
        res: dict[str, Any] | None = None
        with preserved_rng(t.device), torch.no_grad(), t._exported_weights():
            try:
                v.eval()
                choices = [m for _, m in headline_choices(v, t.data_spec)]
                for metric in [self.chosen] if self.chosen else choices:
                    try:
                        res = self._evaluate(metric)
                        self.chosen = metric
                        break
                    except GanzooError as e:
                        errors.append(f"{metric}: {e}")
            finally:
                v.train(was_training)
        if res is None:
            raise GanzooError(f"--eval-every: no headline metric could be computed ({'; '.join(errors) or 'none'})")
        record: dict[str, Any] = {"step": step, "eval/metric": self.chosen, "eval/n": res["n"]}
        floor = res["baselines"].get("real_vs_real", {})
        for k, val in res["scores"].items():
            if isinstance(val, (int, float)):
                record[f"eval/{k}"] = val
                if isinstance(floor.get(k), (int, float)):
                    record[f"eval/{k}_floor"] = floor[k]
        record["eval/seconds"] = round(time.perf_counter() - t0, 2)
        t.log.record_eval(record)
        return record
