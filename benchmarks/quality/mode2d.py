"""PROTOCOLS.md section 1: mode collapse on the 2D ring (8 modes) and grid (25 modes), with the recipes by name.

Each row is what a user gets from the variant's name: ``ganzoo train vanilla.ring8 --seed S`` (the tag is the
recipe: its length, learning-rate schedule, EMA and precision are the tag's defaults) run as a whole command on one
thread, then scored by ``ganzoo eval MODEL --metrics modes-2d -n 2500`` (high quality = within 3 std of the
nearest mode; modes captured; reverse KL of the mode histogram to uniform). Writes a markdown table with
mean ± standard error beside the published rows, every seed's numbers and command (JSON), and a scatter picture of
seed 0's samples over the modes.

    python -m benchmarks.quality mode2d --seeds 5 --jobs 2

With ``--jobs`` above 1 the seeds train side by side, so their wall times are marked shared, and the time verdict
reads a rerun of seed 0 made alone afterwards: only a command run alone on the machine is a timing.

The ``tiny`` budget runs the same commands with ``--steps 20``: a smoke test of the code, not a result.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from .common import Report, mean_se, table

# Steps of each budget; ``None`` is the recipe's own length (the tag's ``default_steps``).
BUDGETS: dict[str, int | None] = {"tiny": 20, "small": None, "medium": None, "paper": None}
PUBLISHED = {  # PacGAN Table 1: modes / % high quality / reverse KL
    "ring8": [("GAN (PacGAN Table 1)", 6.3, 98.2, 0.45), ("PacGAN2", 7.9, 95.6, 0.07), ("PacGAN4", 7.8, 95.9, 0.07)],
    "grid25": [
        ("GAN (PacGAN Table 1)", 17.3, 94.8, 0.70),
        ("PacGAN2", 23.8, 91.3, 0.13),
        ("PacGAN4", 24.8, 93.6, 0.04),
    ],
}
# The targets (mean over seeds): modes, % high quality, reverse KL (None: no target).
TARGETS = {"ring8": (8, 98.0, None), "grid25": (25, 97.0, 0.03)}
N_SCORED = 2500


def _ganzoo(args: list[str]) -> subprocess.CompletedProcess:
    # One thread, as the 2-core CPU budget is stated; the command is the one a user types.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "ganzoo", *args], env=env, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"`ganzoo {shlex.join(args)}` failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return proc


def _train(data: str, seed: int, steps: int | None, run_dir: Path) -> tuple[list[str], float]:
    """Run ``ganzoo train vanilla.<data>`` by name with ``seed`` (``steps``: only to shorten a smoke test); the
    arguments and the whole command's wall time."""
    train = ["train", f"vanilla.{data}", "--seed", str(seed), "--out", str(run_dir), "--no-progress"]
    if steps is not None:
        train += ["--steps", str(steps)]
    t0 = time.perf_counter()
    _ganzoo(train)
    return train, time.perf_counter() - t0


def run_one(data: str, seed: int, steps: int | None, run_dir: Path, quiet: bool = True) -> dict:
    """Train ``vanilla.<data>`` by name with ``seed`` and score it; the scores, the exact commands and the training
    command's wall time (``quiet``: whether it ran alone, so that the time is a timing)."""
    train, seconds = _train(data, seed, steps, run_dir)
    model = run_dir / "model.safetensors"
    evaluate = ["eval", str(model), "--metrics", "modes-2d", "-n", str(N_SCORED), "--json", "--no-save", "-q"]
    result = json.loads(_ganzoo(evaluate).stdout)
    scores, real = result["scores"], result["baselines"]["real_vs_real"]
    return {
        **{k: float(scores[k]) for k in ("modes", "high_quality", "reverse_kl")},
        "plain": _plain_scores(model, data),
        "real_test_points": {k: float(real[k]) for k in ("modes", "high_quality", "reverse_kl")},
        "seed": seed,
        "train_seconds": round(seconds, 1),
        "quiet": quiet,
        "command": "OMP_NUM_THREADS=1 ganzoo " + shlex.join(train[:4] + train[6:]),
        "eval": "ganzoo " + shlex.join(["eval", "MODEL", *evaluate[2:6]]),
    }


def _plain_scores(model_path: Path, data: str) -> dict[str, float]:
    """The same model and noise as ``ganzoo eval``'s (seed 0, one batch), decoded without rejection: what the
    recipe's sampler (``sampler=drs``) adds."""
    import ganzoo
    from ganzoo.metrics.builtin import modes_2d_metric

    model = ganzoo.load(model_path).eval()
    model.drs_calibration = None
    with torch.no_grad():
        samples = model.generate(n=N_SCORED, seed=0)
    return {k: float(v) for k, v in modes_2d_metric(samples, data=data).items()}


def _picture(data: str, run_dir: Path, seed: int) -> torch.Tensor:
    import ganzoo
    from ganzoo.data.toy2d import grid25_modes, ring8_modes
    from ganzoo.utils.images import scatter_image

    model = ganzoo.load(run_dir / "model.safetensors").eval()
    samples = model.generate(n=N_SCORED, seed=10_000 + seed)
    lim, ref = (1.5, ring8_modes()) if data == "ring8" else (6.0, grid25_modes())
    return scatter_image(samples, lim, size=256, reference=ref)


def _timing(stats: list[dict], timed: dict | None) -> tuple[float, str] | None:
    """The wall time the verdict judges and what it is: the slowest run made alone, else the rerun timed alone."""
    quiet = [s["train_seconds"] for s in stats if s["quiet"]]
    if quiet:
        return max(quiet), f"slowest run {max(quiet):.0f} s"
    if timed is not None:
        return timed["train_seconds"], f"seed {timed['seed']} timed alone {timed['train_seconds']:.0f} s"
    return None


def _verdict(data: str, stats: list[dict], timed: dict | None = None) -> str:
    modes, hq, kl = TARGETS[data]
    m = sum(s["modes"] for s in stats) / len(stats)
    h = 100 * sum(s["high_quality"] for s in stats) / len(stats)
    k = sum(s["reverse_kl"] for s in stats) / len(stats)
    parts = [f"modes {m:.2f} (target {modes}: {'met' if m >= modes else 'missed'})"]
    parts.append(f"high quality {h:.2f} % (target {hq:g} %: {'met' if h >= hq else 'missed'})")
    if kl is not None:
        parts.append(f"reverse KL {k:.3f} (target {kl:g}: {'met' if k <= kl else 'missed'})")
    timing = _timing(stats, timed)
    if timing is None:
        parts.append("time not judged (no run made alone)")
    else:
        parts.append(f"{timing[1]} (target 300 s: {'met' if timing[0] <= 300 else 'missed'})")
    return "Target: " + "; ".join(parts) + "."


def run(budget: str, seeds: int, out: Path, datasets: tuple[str, ...] = ("ring8", "grid25"), jobs: int = 1) -> Path:
    """Train and score the recipe of every dataset in ``datasets`` over ``seeds`` seeds, ``jobs`` runs at a time;
    write ``<out>/mode2d.md/.json/.png``."""
    steps = BUDGETS[budget]
    out.mkdir(parents=True, exist_ok=True)
    report = Report("mode2d", out, budget, seeds)
    length = "the recipe's own length" if steps is None else f"--steps {steps} (a smoke test, not a result)"
    report.add(
        f"Budget `{budget}`: {length}, {seeds} seeds, {N_SCORED:,} samples scored by `ganzoo eval --metrics modes-2d`, "
        f"CPU, one thread per run, {jobs} run(s) at a time. Wall time: the whole `ganzoo train` command"
        + (
            "; the runs shared the machine (marked shared), so the time verdict reads seed 0 trained again alone."
            if jobs > 1
            else ", one run at a time."
        ),
        "",
    )
    runs: dict[tuple[str, int], dict] = {}
    pictures: dict[str, torch.Tensor] = {}

    def one(data: str, seed: int) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            runs[data, seed] = run_one(data, seed, steps, Path(tmp), quiet=jobs == 1)
            if seed == 0:
                pictures[data] = _picture(data, Path(tmp), seed)
        print(f"mode2d {data} seed {seed}: {runs[data, seed]}", file=sys.stderr, flush=True)

    # ``jobs`` commands at a time, each on one thread (the wall times then include that sharing).
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for future in [pool.submit(one, d, s) for d in datasets for s in range(seeds)]:
            future.result()
    timed: dict[str, dict] = {}
    if jobs > 1:  # the timing: seed 0 of each dataset again, alone on the machine
        for data in datasets:
            with tempfile.TemporaryDirectory() as tmp:
                timed[data] = {"seed": 0, "train_seconds": round(_train(data, 0, steps, Path(tmp))[1], 1)}
            print(f"mode2d {data} seed 0 timed alone: {timed[data]}", file=sys.stderr, flush=True)
    for data in datasets:
        stats = [runs[data, s] for s in range(seeds)]
        report.raw[data] = stats
        if data in timed:
            report.raw[f"{data}_timed"] = timed[data]
        seconds = [s["train_seconds"] for s in stats]
        rows = [
            [
                f"`vanilla.{data}` (ganzoo recipe)",
                mean_se([s["modes"] for s in stats]),
                mean_se([100 * s["high_quality"] for s in stats]),
                mean_se([s["reverse_kl"] for s in stats], 3),
                f"measured, {sum(seconds) / len(seconds):.0f} s per run (max {max(seconds):.0f} s"
                + (", shared)" if jobs > 1 else ")"),
            ]
        ]
        rows.append(
            [
                "the same models sampled plainly (`sampler=plain`: no rejection)",
                mean_se([s["plain"]["modes"] for s in stats]),
                mean_se([100 * s["plain"]["high_quality"] for s in stats]),
                mean_se([s["plain"]["reverse_kl"] for s in stats], 3),
                "measured in the same run",
            ]
        )
        floor = stats[0]["real_test_points"]
        rows.append(
            [
                f"real test points ({N_SCORED:,}, a perfect sampler)",
                f"{floor['modes']:.0f}",
                f"{100 * floor['high_quality']:.2f}",
                f"{floor['reverse_kl']:.3f}",
                "measured by the same `ganzoo eval`",
            ]
        )
        for name, modes, hq, kl in PUBLISHED[data]:
            rows.append([name, modes, hq, kl, "published, PacGAN protocol (Adam 1e-4, batch 100), long schedule"])
        per_seed = [
            [
                s["seed"],
                s["modes"],
                f"{100 * s['high_quality']:.2f}",
                f"{s['reverse_kl']:.3f}",
                f"{s['train_seconds']}" + ("" if s["quiet"] else " (shared)"),
            ]
            for s in stats
        ]
        report.add(
            f"### {data}",
            "",
            *table(["model", "modes", "high quality %", "reverse KL", "source"], rows),
            "",
            _verdict(data, stats, timed.get(data)),
            "",
            f"Per seed; command `{stats[0]['command'].replace('--seed 0', '--seed SEED')}`, scored with "
            f"`{stats[0]['eval']}`:",
            "",
            *table(["seed", "modes", "high quality %", "reverse KL", "train wall time s"], per_seed),
            "",
        )
    report.add(
        "Reverse KL is KL(p_gen || uniform) over the modes of the high-quality samples (PacGAN's code). The picture "
        "shows seed 0's 2,500 samples (blue) over the mode centres (red), ring left, grid right."
    )
    return report.write(torch.stack([pictures[d] for d in datasets]), nrow=len(datasets))


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--budget", choices=list(BUDGETS), default="small")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--data", default="ring8,grid25")
    ap.add_argument("--out", default="docs/benchmarks")
    ap.add_argument("--jobs", type=int, default=1, help="training commands at a time (each on one thread)")
    args = ap.parse_args()
    print(run(args.budget, args.seeds, Path(args.out), tuple(args.data.split(",")), args.jobs).read_text())


if __name__ == "__main__":
    main()
