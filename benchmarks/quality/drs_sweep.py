"""Discriminator rejection sampling settings on a finished run, without training it again.

The end of a ``sampler=drs`` run fine-tunes its discriminator and calibrates the rejection
(:class:`ganzoo.rejection.RejectionSampling`'s ``on_train_end``), starting from the state its last checkpoint holds:
the EMA generator and the trained discriminator. This loads that checkpoint, repeats the end of training with each
setting of ``drs_finetune`` x ``drs_percentile`` (seeded by the run's seed, as the run itself does) and scores the
model with ``ganzoo eval``'s evaluators, beside the plain generator::

    python -m benchmarks.quality.drs_sweep runs/vanilla.grid25 --finetune 0,1000,2000 --percentile 50,80,95
    python -m benchmarks.quality.drs_sweep runs/vanilla.grid25 --critic fourier --finetune 2000 --gamma 0

``--critic`` picks the classifier whose logit rejection reads (``drs_critic``) and ``--gamma`` a fixed shift instead
of the percentiles (``drs_gamma``; 0 is exact rejection). With the run's own settings it reproduces the scores of the
run's ``model.safetensors``. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch

import ganzoo
from ganzoo.metrics.evaluate import evaluate
from ganzoo.train.checkpoint import list_checkpoints
from ganzoo.train.data import build_dataset
from ganzoo.variant import TrainInfo, replace_config

STACKED = "stacked-kl"
"""``--metrics stacked-kl``: the Stacked MNIST protocol's KL to uniform over the 1,000 modes, as
:mod:`benchmarks.quality.stacked_recipe` scores it (26,000 samples, the MNIST classifier on each channel)."""


def stacked_classifier(spec: str):
    from ganzoo.metrics.domain import get_domain_classifier

    from .stacked_mnist import SIZE

    return get_domain_classifier("mnist:" + spec.split(":", 1)[1], SIZE, 1)


def sweep(
    run: Path,
    finetune: list[int],
    percentiles: list[float],
    metrics: str | None,
    n: int | None,
    critic: str = "discriminator",
    gamma: float | None = None,
) -> list[dict[str, Any]]:
    """One row per setting (and one for the plain generator): the setting, the acceptance and the scores."""
    meta = json.loads((run / "run.json").read_text())
    seed, spec = int(meta["train"]["seed"]), meta["data"]
    found = list_checkpoints(run / "checkpoints")
    if not found:
        raise SystemExit(f"{run} has no checkpoints/")
    model = ganzoo.load(found[0][1], ema=True).eval()  # the newest checkpoint, with its EMA generator
    if not hasattr(model, "drs_calibration"):
        raise SystemExit(f"{model.name} does not offer discriminator rejection sampling (sampler=drs)")
    model.drs_calibration = None
    data = build_dataset(spec, model, split="train", seed=seed)
    trained_d = {k: v.clone() for k, v in model.D.state_dict().items()}

    def score() -> dict[str, float]:
        if metrics == STACKED:
            from .stacked_mnist import N_SAMPLES, _generated, _stats

            return {"kl": float(_stats(stacked_classifier(spec), _generated(model, N_SAMPLES, seed))["kl"])}
        out = evaluate(model, data=spec, metrics=metrics, n=n, progress=False)["scores"]
        return {k: float(v) for k, v in out.items() if isinstance(v, (int, float))}

    rows = [{"setting": "plain (no rejection)", "acceptance": 1.0, **score()}]
    shape = tuple(model.generate(z=model.prior(1, seed=0)).shape[1:])
    for steps in finetune:
        for pct in percentiles if gamma is None else [percentiles[0]]:
            model.D.load_state_dict(trained_d)
            model.config = replace_config(
                model.config,
                sampler="drs",
                drs_finetune=steps,
                drs_percentile=pct,
                drs_critic=critic,
                drs_gamma=gamma,
            )
            if hasattr(model, "critic"):
                del model.critic  # a fresh critic for this setting (or none)
            model.add_rejection_critic(shape)
            info = TrainInfo(
                dataset=data, data_spec=spec, device=torch.device("cpu"), out=run, step=0, seed=seed, verbose=False
            )
            model.on_train_end(info)
            rows.append(
                {
                    "setting": f"drs_critic={critic} drs_finetune={steps} "
                    + (f"drs_percentile={pct:g}" if gamma is None else f"drs_gamma={gamma:g}"),
                    "acceptance": model.drs_calibration.acceptance,
                    **score(),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path, help="a run folder (its newest checkpoint is the end of training)")
    ap.add_argument("--finetune", default="0", help="comma-separated drs_finetune values")
    ap.add_argument("--percentile", default="80", help="comma-separated drs_percentile values")
    ap.add_argument("--critic", default="discriminator", choices=("discriminator", "fourier"), help="drs_critic")
    ap.add_argument("--gamma", type=float, default=None, help="drs_gamma: a fixed shift instead of the percentiles")
    ap.add_argument(
        "--metrics", default=None, help=f"metrics for ganzoo eval (default: the task's), or {STACKED} for Stacked MNIST"
    )
    ap.add_argument("-n", type=int, default=None, help="sample count N (default: the evaluator's)")
    args = ap.parse_args()
    rows = sweep(
        args.run,
        [int(x) for x in args.finetune.split(",")],
        [float(x) for x in args.percentile.split(",")],
        args.metrics,
        args.n,
        args.critic,
        args.gamma,
    )
    keys = [k for k in rows[0] if k not in ("setting", "acceptance")]
    print("| setting | kept | " + " | ".join(keys) + " |")
    print("| --- | ---: | " + " | ".join("---:" for _ in keys) + " |")
    for r in rows:
        vals = " | ".join(f"{r.get(k, float('nan')):.4g}" for k in keys)
        print(f"| {r['setting']} | {100 * r['acceptance']:.1f} % | {vals} |")


if __name__ == "__main__":
    main()
