"""Issue #14's recipes (and #13's ``dcgan.mnist``) by name: each task trained as a user would (``ganzoo train TAG``),
timed as a whole command, and scored by ``ganzoo eval`` against the issue's targets.

    python -m benchmarks.quality recipes --seeds 3 [--only NAME ...] [--runs-from DIR]

Recipes (``RECIPES``; SHARED stands for ``../shared/data``, or ``$GANZOO_SHARED_DATA``):

- ``pix2pix``: ``ganzoo train pix2pix.shapes --seed S``, beside the L1-only ``pix2pix.shapes_l1`` with the same command
  shape; targets: PSNR above 24.77 dB, ``grad-ratio`` and ``hf-ratio`` above the L1-only model's, within 600 s.
- ``cyclegan``: ``ganzoo train cyclegan.shapes32 --seed S``; target A->B PSNR at least 25 dB against the hidden pairing
  within 1,200 s; ``ganzoo eval`` reports both directions (B->A as ``b2a_*``).
- ``mnist``: ``ganzoo train dcgan.mnist --data mnist:SHARED/mnist --seed S``, scored by ``ganzoo eval RUN -n 2000``
  (every unconditional evaluator, with its real-vs-real floor at the same N); target: FID at most 12 within 540 s.
- ``attngan``: ``ganzoo train attngan.shapes32 --seed S``; every score ``ganzoo eval`` returns is reported; targets:
  ``r_precision`` at least 60 % and every per-attribute margin (score keys with ``margin`` in their name, in points)
  at least 20 points, within 1,200 s.
- ``srgan``: ``ganzoo train srgan.small --data sr-folder:SHARED/sr/Urban100_train --seed S``, scored on Set5 and Set14
  (``ganzoo eval RUN --data sr-pairs:SHARED/sr/Set5``); target: the SRResNet stage at least 30.5 / 27.4 dB within
  1,800 s. The SRResNet stage is ``stages/pretrain.safetensors``, the model the trainer leaves at the end of the
  ``pretrain`` stage; without it the final model is scored in its place and the report says so.
- ``anomaly``: per digit D = 0..9, ``ganzoo train ganomaly.mnist --data mnist-anomaly:SHARED/mnist --set
  anomaly_class=D --seed S``, then the autoencoder baseline ``ganomaly.mnist_ae`` for the same wall time: ``--steps
  1000000 --max-minutes M`` with M the GANomaly command's measured wall time (its training loop gets the whole
  command's time, start-up included, which favours the baseline). Scored by ``ganzoo eval`` (AUROC, AUPRC); targets:
  mean AUROC at least 0.90, above the autoencoder on at least 8 of the 10 digits, within 300 s per digit.

Per run the module records the exact command, the wall time of the whole ``ganzoo train`` command (a subprocess,
timed), each ``ganzoo eval RUN --json --no-save -q`` command with its wall time and its parsed scores and baselines,
and a picture (``ganzoo sample RUN -n 8 -o PATH``, or the run's own last sample grid ``samples/step-*.png`` for tasks
that ``ganzoo sample`` does not draw). It writes ``<out>/recipes_<name>.md/.json/.png``: mean ± s.e. over seeds, the
per-seed rows, and a verdict line per target. Commands run one at a time with torch's default threads, so the wall
times are those of a quiet machine. The ``tiny`` budget adds ``--steps 20`` to every command, scores 8 items
(``-n 8``, the whole test split for anomaly models) and trains digit 0 only: a smoke test of the code, not a result.

``--runs-from DIR`` scores runs made elsewhere with the same commands instead of training (with ``--times-only``, it
keeps the scores of the reports already in ``--out`` and reads only the wall times anew, evaluating nothing). Layout::

    DIR/<recipe>/<seed>/<run>/          a run folder of `ganzoo train --out` (model.safetensors, run.json ...)
    DIR/<recipe>/<seed>/times.json      {"<run>": wall seconds of its whole `ganzoo train` command, ...}
    DIR/<recipe>/timed.json             optional: {"<run>": [{"seed": S, "seconds": X}, ...]}

where ``<recipe>`` is a name of ``RECIPES``, ``<seed>`` the integer seed (0, 1, ...; ``--seeds`` says how many are
read), and ``<run>`` the run's key: its tag (``pix2pix.shapes``, ``pix2pix.shapes_l1``, ``cyclegan.shapes32``,
``attngan.shapes32``, ``srgan.small``), or for anomaly the tag and digit (``ganomaly.mnist-d3``,
``ganomaly.mnist_ae-d3``). An optional ``DIR/<recipe>/conditions.txt`` says how those runs shared the machine (threads,
other jobs); the report quotes it beside the wall times. Training writes the same layout into a temporary folder and
scores it with the same code.

Only a command that ran alone on the machine with torch's default threads is a timing. In ``times.json`` a number is
such a run; a run that shared the machine (one thread beside other runs, as quality runs often do) is written
``{"seconds": X, "quiet": false}``: scored and shown with its wall time, but left out of the time verdict.
``timed.json`` lists reruns of the same commands made alone only to time them (scored nowhere). The time verdict
takes the slowest of the timings, and says "not judged" when there is none.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from . import common
from .common import Report, Skip, beside, mean_se, table

SHARED = "{SHARED}"  # placeholder in command templates: the shared data folder
SHOWN_SHARED = "SHARED"  # how it appears in the reports
TINY_STEPS = 20
TINY_EVAL_N = 8
AE_STEPS = 1_000_000  # the baseline's --steps: --max-minutes ends it
PIX2PIX_PSNR = 24.77  # today's pix2pix.shapes PSNR, the number to beat
CYCLE_PSNR = 25.0
MNIST_FID = 12.0  # issue #13: dcgan.mnist at N = 2,000 against MNIST test (the train-vs-test floor is about 6)
MNIST_N = 2000
R_PRECISION = 0.60
ATTRIBUTE_MARGIN = 20.0  # percentage points above chance, per attribute
SR_PSNR = {"Set5": 30.5, "Set14": 27.4}
AUROC_TARGET = 0.90
AE_WINS = 8
DIGITS = tuple(range(10))
PER_SEED_SCORES = 6  # scores shown per run in the per-seed table (all of them are in the JSON)


@dataclass(frozen=True)
class Command:
    """One ``ganzoo train`` command of a recipe: ``key`` names its run folder, ``args`` follow the tag (``{SHARED}``
    stands for the shared data folder)."""

    key: str
    label: str
    tag: str
    args: tuple[str, ...] = ()
    same_time_as: str | None = None  # the key of the command whose wall time this one gets (--max-minutes)


@dataclass(frozen=True)
class Recipe:
    """A recipe of the issue: its commands, the ``ganzoo eval`` calls that score each run, and its targets."""

    name: str
    commands: tuple[Command, ...]
    target_seconds: float
    evals: tuple[tuple[str, tuple[str, ...]], ...] = (("test split", ()),)
    needs: tuple[str, ...] = ()  # folders under SHARED
    verdict: Callable[[Recipe, dict[str, Any]], list[str]] = field(default=lambda r, s: [])
    stage_model: str | None = None  # score this stage's model too (srgan: "pretrain")
    seconds_per: str = "command"  # what the time target bounds
    tiny_eval_n: int | None = TINY_EVAL_N  # -n of the evaluations at the tiny budget (None: the evaluator's own)
    eval_n: int | None = None  # -n of the evaluations at the other budgets (None: the evaluator's own)


def _anomaly_commands() -> tuple[Command, ...]:
    data = ("--data", f"mnist-anomaly:{SHARED}/mnist")
    out: list[Command] = []
    for d in DIGITS:
        out.append(
            Command(
                f"ganomaly.mnist-d{d}", f"GANomaly, digit {d}", "ganomaly.mnist", (*data, "--set", f"anomaly_class={d}")
            )
        )
        out.append(
            Command(
                f"ganomaly.mnist_ae-d{d}",
                f"AE baseline, digit {d}",
                "ganomaly.mnist_ae",
                (*data, "--set", f"anomaly_class={d}"),
                same_time_as=f"ganomaly.mnist-d{d}",
            )
        )
    return tuple(out)


# ---- verdicts ------------------------------------------------------------------------------------------------------


def _met(ok: bool) -> str:
    return "met" if ok else "missed"


def _mean(xs: Sequence[float]) -> float:
    xs = [float(x) for x in xs if x is not None and not math.isnan(float(x))]
    return sum(xs) / len(xs) if xs else float("nan")


def _scores(summary: dict[str, Any], key: str, evaluation: str, score: str) -> list[float]:
    return [
        r["evals"][evaluation]["scores"][score]
        for r in summary["runs"]
        if r["key"] == key and score in r["evals"].get(evaluation, {}).get("scores", {})
    ]


def _timings(summary: dict[str, Any], keys: Sequence[str] | None = None) -> list[float]:
    """Wall times of the commands (of ``keys``, or all) that ran alone: the quiet scored runs and the timed reruns."""
    runs = [r for r in summary["runs"] if r.get("quiet", True)] + list(summary.get("timed", ()))
    return [r["train_seconds"] for r in runs if keys is None or r["key"] in keys]


def _time_verdict(recipe: Recipe, summary: dict[str, Any], keys: Sequence[str] | None = None) -> str:
    target = f"target {recipe.target_seconds:.0f} s per {recipe.seconds_per}"
    timed = _timings(summary, keys)
    if not timed:
        return f"time not judged ({target}): no command was timed alone, every run shared the machine"
    slow = max(timed)
    return (
        f"the slowest of the {len(timed)} command(s) timed alone {slow:.0f} s "
        f"({target}: {_met(slow <= recipe.target_seconds)})"
    )


def _time_entry(value: Any, where: str) -> tuple[float, bool]:
    """``(seconds, quiet)`` of a ``times.json`` entry: a number (a run alone on the machine) or ``{"seconds": X,
    "quiet": false}`` (a run that shared it).

    :raises ValueError: for anything else, naming ``where``.
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value), True
    if isinstance(value, dict) and isinstance(value.get("seconds"), (int, float)):
        quiet = value.get("quiet", True)
        if isinstance(quiet, bool) and set(value) <= {"seconds", "quiet"}:
            return float(value["seconds"]), quiet
    raise ValueError(f'{where}: {value!r} is not a wall time (seconds, or {{"seconds": X, "quiet": false}})')


def _read_times(folder: Path) -> dict[str, tuple[float, bool]]:
    """``folder/times.json`` as run key -> ``(seconds, quiet)`` (:func:`_time_entry`).

    :raises Skip: when the file is absent.
    :raises ValueError: for an entry that is not a wall time.
    """
    path = folder / "times.json"
    if not path.is_file():
        raise Skip(f"{path} is absent (--runs-from layout: DIR/<recipe>/<seed>/<run>/ and times.json)")
    return {key: _time_entry(value, f"{path}: {key}") for key, value in json.loads(path.read_text()).items()}


def _timed_reruns(path: Path, keys: Sequence[str]) -> list[dict[str, Any]]:
    """The reruns of a ``timed.json`` (``{"<run>": [{"seed": S, "seconds": X}, ...]}``) as ``{"key", "seed",
    "train_seconds"}``, or none without the file.

    :raises ValueError: for a run key that is not one of ``keys`` or an entry without a seed and seconds.
    """
    if not path.is_file():
        return []
    out = []
    for key, entries in json.loads(path.read_text()).items():
        if key not in keys:
            raise ValueError(f"{path}: unknown run {key!r}; valid: {', '.join(keys)}")
        for e in entries:
            ok = isinstance(e, dict) and isinstance(e.get("seed"), int) and isinstance(e.get("seconds"), (int, float))
            if not ok:
                raise ValueError(f'{path}: {key}: {e!r} is not {{"seed": S, "seconds": X}}')
            out.append({"key": key, "seed": e["seed"], "train_seconds": float(e["seconds"])})
    return out


def _pix2pix_verdict(recipe: Recipe, summary: dict[str, Any]) -> list[str]:
    ev = "test split"
    psnr = _mean(_scores(summary, "pix2pix.shapes", ev, "psnr"))
    parts = [f"PSNR {beside(psnr, PIX2PIX_PSNR)} dB (target above {PIX2PIX_PSNR}: {_met(psnr > PIX2PIX_PSNR)})"]
    for metric in ("grad-ratio", "hf-ratio"):
        ours = _mean(_scores(summary, "pix2pix.shapes", ev, metric))
        l1 = _mean(_scores(summary, "pix2pix.shapes_l1", ev, metric))
        parts.append(f"{metric} {ours:.3f} (target above the L1-only model's {l1:.3f}: {_met(ours > l1)})")
    parts.append(_time_verdict(recipe, summary, ["pix2pix.shapes"]))
    return ["Target: " + "; ".join(parts) + "."]


def _mnist_verdict(recipe: Recipe, summary: dict[str, Any]) -> list[str]:
    label = recipe.evals[0][0]
    fid = _mean(_scores(summary, "dcgan.mnist", label, "fid"))
    floors = [
        r["evals"][label]["baselines"]["real_vs_real"]["fid"]
        for r in summary["runs"]
        if "fid" in r["evals"].get(label, {}).get("baselines", {}).get("real_vs_real", {})
    ]
    floor = f"; the real-vs-real floor at the same N {_mean(floors):.2f}" if floors else ""
    return [
        f"Target: FID {beside(fid, MNIST_FID)} (target at most {MNIST_FID:.0f}: {_met(fid <= MNIST_FID)}{floor}); "
        f"{_time_verdict(recipe, summary)}."
    ]


def _cyclegan_verdict(recipe: Recipe, summary: dict[str, Any]) -> list[str]:
    psnr = _mean(_scores(summary, "cyclegan.shapes32", "test split", "psnr"))
    back = _mean(_scores(summary, "cyclegan.shapes32", "test split", "b2a_psnr"))
    return [
        f"Target: A->B PSNR {beside(psnr, CYCLE_PSNR)} dB against the hidden pairing (target at least {CYCLE_PSNR}: "
        f"{_met(psnr >= CYCLE_PSNR)}; B->A {back:.2f} dB, no target); {_time_verdict(recipe, summary)}."
    ]


def _as_points(key: str, value: float) -> float:
    """Margin scores in percentage points: keys ending ``_pts`` are points already, fractions are scaled."""
    return value if key.endswith("_pts") or abs(value) > 1 else 100 * value


def _attngan_verdict(recipe: Recipe, summary: dict[str, Any]) -> list[str]:
    runs = [r for r in summary["runs"] if r["key"] == "attngan.shapes32"]
    keys = sorted({k for r in runs for k in r["evals"].get("test split", {}).get("scores", {})})
    parts = []
    if "r_precision" in keys:
        rp = _mean(_scores(summary, "attngan.shapes32", "test split", "r_precision"))
        rp_pct = rp * 100 if rp <= 1 else rp
        parts.append(
            f"R-precision {beside(rp_pct, 100 * R_PRECISION, 1)} % (target at least {100 * R_PRECISION:.0f} %: "
            f"{_met(rp_pct >= 100 * R_PRECISION)})"
        )
    else:
        parts.append("R-precision: `ganzoo eval` returned no `r_precision` score (target missed)")
    margins = [k for k in keys if "margin" in k and not k.startswith(("attr_min", "min_"))]
    for k in margins:
        pts = _as_points(k, _mean(_scores(summary, "attngan.shapes32", "test split", k)))
        parts.append(
            f"{k} {beside(pts, ATTRIBUTE_MARGIN, 1)} points (target at least {ATTRIBUTE_MARGIN:.0f}: "
            f"{_met(pts >= ATTRIBUTE_MARGIN)})"
        )
    if not margins:
        parts.append("per-attribute margins: none among the scores (not checked)")
    parts.append(_time_verdict(recipe, summary))
    return ["Target: " + "; ".join(parts) + "."]


def _srgan_verdict(recipe: Recipe, summary: dict[str, Any]) -> list[str]:
    runs = [r for r in summary["runs"] if r["key"] == "srgan.small"]
    staged = all(r.get("stage_model") for r in runs)
    which = (
        "SRResNet stage (`stages/pretrain.safetensors`, the model at the end of that stage)"
        if staged
        else "final model (no `stages/pretrain.safetensors` in the run: the SRResNet stage itself is not measured)"
    )
    parts = []
    for ev, bound in SR_PSNR.items():
        label = f"{ev}, SRResNet stage" if staged else ev
        psnr = _mean(_scores(summary, "srgan.small", label, "psnr"))
        parts.append(f"{ev} {beside(psnr, bound)} dB (target at least {bound}: {_met(psnr >= bound)})")
    parts.append(_time_verdict(recipe, summary))
    return [f"Target, scored on the {which}: " + "; ".join(parts) + "."]


def _anomaly_verdict(recipe: Recipe, summary: dict[str, Any]) -> list[str]:
    digits = sorted({int(r["key"].rsplit("-d", 1)[1]) for r in summary["runs"]})
    gan = {d: _mean(_scores(summary, f"ganomaly.mnist-d{d}", "test split", "auroc")) for d in digits}
    ae = {d: _mean(_scores(summary, f"ganomaly.mnist_ae-d{d}", "test split", "auroc")) for d in digits}
    mean = _mean(list(gan.values()))
    wins = sum(gan[d] > ae[d] for d in digits)
    keys = [f"ganomaly.mnist-d{d}" for d in digits]
    need = min(AE_WINS, len(digits)) if len(digits) < len(DIGITS) else AE_WINS
    rows = [[d, f"{gan[d]:.3f}", f"{ae[d]:.3f}", "GANomaly" if gan[d] > ae[d] else "AE"] for d in digits]
    return [
        *table(["anomaly digit", "GANomaly AUROC", "AE AUROC (same wall time)", "higher"], rows),
        "",
        f"Target: mean AUROC {beside(mean, AUROC_TARGET, 3)} over {len(digits)} digit(s) "
        f"(target at least {AUROC_TARGET}: "
        f"{_met(mean >= AUROC_TARGET and len(digits) == len(DIGITS))}"
        + ("" if len(digits) == len(DIGITS) else f", only {len(digits)} of 10 digits run")
        + f"); above the autoencoder on {wins} of {len(digits)} (target {AE_WINS} of 10: "
        f"{_met(wins >= need and len(digits) == len(DIGITS))}); {_time_verdict(recipe, summary, keys)}.",
    ]


RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in (
        Recipe(
            "pix2pix",
            (
                Command("pix2pix.shapes", "`pix2pix.shapes` (ganzoo recipe)", "pix2pix.shapes"),
                Command("pix2pix.shapes_l1", "`pix2pix.shapes_l1` (L1 only, no GAN loss)", "pix2pix.shapes_l1"),
            ),
            600,
            verdict=_pix2pix_verdict,
        ),
        Recipe(
            "cyclegan",
            (
                Command(
                    "cyclegan.shapes32",
                    "`cyclegan.shapes32` (ganzoo recipe)",
                    "cyclegan.shapes32",
                    ("--eval-every", "1000"),  # the quality-over-time curve: 1-2 s per point
                ),
            ),
            1200,
            verdict=_cyclegan_verdict,
        ),
        Recipe(
            "mnist",
            (
                Command(
                    "dcgan.mnist",
                    "`dcgan.mnist` (ganzoo recipe)",
                    "dcgan.mnist",
                    ("--data", f"mnist:{SHARED}/mnist"),
                ),
            ),
            540,
            needs=("mnist",),
            verdict=_mnist_verdict,
            eval_n=MNIST_N,
        ),
        Recipe(
            "attngan",
            (Command("attngan.shapes32", "`attngan.shapes32` (ganzoo recipe)", "attngan.shapes32"),),
            1200,
            verdict=_attngan_verdict,
        ),
        Recipe(
            "srgan",
            (
                Command(
                    "srgan.small",
                    "`srgan.small` (ganzoo recipe)",
                    "srgan.small",
                    ("--data", f"sr-folder:{SHARED}/sr/Urban100_train"),
                ),
            ),
            1800,
            evals=(
                ("Set5", ("--data", f"sr-pairs:{SHARED}/sr/Set5")),
                ("Set14", ("--data", f"sr-pairs:{SHARED}/sr/Set14")),
            ),
            needs=("sr/Urban100_train", "sr/Set5", "sr/Set14"),
            verdict=_srgan_verdict,
            stage_model="pretrain",
        ),
        Recipe(
            "anomaly",
            _anomaly_commands(),
            300,
            needs=("mnist",),
            verdict=_anomaly_verdict,
            seconds_per="digit",
            tiny_eval_n=None,  # AUROC needs both classes: the whole test split even in a smoke test
        ),
    )
}


# ---- running commands ----------------------------------------------------------------------------------------------


def _fill(args: Sequence[str], shared: str) -> list[str]:
    return [a.replace(SHARED, shared) for a in args]


def _ganzoo(args: list[str]) -> tuple[subprocess.CompletedProcess, float]:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "ganzoo", *args], capture_output=True, text=True, env=dict(os.environ))
    return proc, time.perf_counter() - t0


def _checked(proc: subprocess.CompletedProcess, shown: str) -> None:
    if proc.returncode:
        raise RuntimeError(f"`{shown}` failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")


def train_args(command: Command, seed: int, budget: str, same_time_seconds: float | None = None) -> list[str]:
    """The arguments after ``ganzoo`` of ``command`` for ``seed`` (``{SHARED}`` not filled, no ``--out``).

    :param command: the recipe's command.
    :param seed: the training seed.
    :param budget: ``tiny`` adds ``--steps 20``.
    :param same_time_seconds: the wall time the command gets (``same_time_as`` commands: ``--max-minutes``).
    :returns: ``["train", TAG, ...]``.
    """
    args = ["train", command.tag, *command.args, "--seed", str(seed), "--no-progress"]
    if command.same_time_as is not None:
        if same_time_seconds is None:
            raise ValueError(f"{command.key} needs the wall time of {command.same_time_as}")
        steps = TINY_STEPS if budget == "tiny" else AE_STEPS
        # Rounded up to the second, so the baseline never gets less time than the command it is matched with.
        args += ["--steps", str(steps), "--max-minutes", f"{math.ceil(same_time_seconds) / 60:.4f}"]
    elif budget == "tiny":
        args += ["--steps", str(TINY_STEPS)]
    return args


def _shown(args: Sequence[str]) -> str:
    return "ganzoo " + shlex.join([a.replace(SHARED, SHOWN_SHARED) for a in args])


def train_recipe(recipe: Recipe, seed: int, budget: str, folder: Path) -> dict[str, float]:
    """Run every command of ``recipe`` for ``seed`` into ``folder/<key>`` and write ``folder/times.json``.

    :returns: key -> wall seconds of the whole ``ganzoo train`` command.
    """
    folder.mkdir(parents=True, exist_ok=True)
    shared = str(common.DATA)
    times: dict[str, float] = {}
    for command in recipe.commands:
        args = train_args(command, seed, budget, times.get(command.same_time_as or ""))
        proc, seconds = _ganzoo([*_fill(args, shared), "--out", str(folder / command.key)])
        _checked(proc, _shown(args))
        times[command.key] = round(seconds, 1)
        print(f"recipes {recipe.name} seed {seed}: {_shown(args)} ({seconds:.0f} s)", file=sys.stderr, flush=True)
        (folder / "times.json").write_text(json.dumps(times, indent=1))
    return times


def _stage_model(run: Path, stage: str) -> Path | None:
    """The model as ``stage`` of the run left it (``stages/STAGE.safetensors``, which the trainer writes at the end
    of every stage but the last), when the run has it."""
    path = run / "stages" / f"{stage}.safetensors"
    return path if path.is_file() else None


def evaluate_run(model: Path, extra: Sequence[str], n: int | None = None, run: Path | None = None) -> dict[str, Any]:
    """``ganzoo eval MODEL [extra] --json --no-save -q [-n N]``: the command, its wall time, scores and baselines.

    :param model: a run folder or model file.
    :param extra: more arguments (``--data SPEC``; ``{SHARED}`` is filled in).
    :param n: ``-n``, or ``None`` for each evaluator's own N.
    :param run: the run folder ``model`` lies in, by default ``model`` itself. The command shows the run folder by
        its name (its key, ``RUN/srgan.small``) and a file in it by its path from there
        (``RUN/srgan.small/stages/pretrain.safetensors``).
    """
    args = ["eval", str(model), *extra, "--json", "--no-save", "-q"]
    if n is not None:
        args += ["-n", str(n)]
    proc, seconds = _ganzoo(_fill(args, str(common.DATA)))
    folder = model if run is None else run
    shown = "/".join(("RUN", folder.name, *model.relative_to(folder).parts))
    shown_args = ["eval", shown, *args[2:]]
    _checked(proc, _shown(shown_args))
    res = json.loads(proc.stdout)
    return {
        "command": _shown(shown_args),
        "seconds": round(seconds, 1),
        "scores": res.get("scores", {}),
        "baselines": res.get("baselines", {}),
        "notes": res.get("notes", []),
        "n": res.get("n"),
    }


def picture(run: Path, path: Path) -> str:
    """A picture of the run at ``path``: ``ganzoo sample RUN -n 8 -o PATH``, or the run's last sample grid when the
    task is one ``ganzoo sample`` does not draw; returns which."""
    proc, _ = _ganzoo(["sample", str(run), "-n", "8", "-o", str(path)])
    if proc.returncode == 0 and path.is_file():
        return "ganzoo sample RUN -n 8"
    grids = sorted((run / "samples").glob("step-*.png"))
    if not grids:
        return "none (ganzoo sample refused the model and the run wrote no sample grid)"
    shutil.copyfile(grids[-1], path)
    return f"the run's own sample grid samples/{grids[-1].name} (`ganzoo sample` draws unconditional models only)"


def sr_stage_picture(stage_model: Path, run: Path, path: Path) -> str:
    """Where the GAN stage differs from the SRResNet stage: centre crops of Set5/Set14 images (those of
    ``benchmarks.quality.sr``, at 2x nearest neighbour), one row each: bicubic, the SRResNet stage's model, the final
    model (after the GAN stage), ground truth. Returns what the picture shows."""
    import ganzoo
    from ganzoo.utils.images import save_grid

    from .sr import PICTURE, _crops

    stage, final = ganzoo.load(stage_model).eval(), ganzoo.load(run).eval()
    tiles = []
    for name, index in PICTURE:
        root = common.shared("sr") / name
        bicubic, srresnet, hr = _crops(stage, root, index)
        tiles += [bicubic, srresnet, _crops(final, root, index)[1], hr]
    save_grid(torch.stack(tiles), path, nrow=4)
    crops = ", ".join(f"{name} image {index}" for name, index in PICTURE)
    return f"centre crops of {crops} (rows); columns: bicubic, SRResNet stage, after the GAN stage, ground truth"


def training_curve(run: Path) -> list[dict[str, Any]]:
    """The quality-over-time points a run recorded with ``--eval-every`` (its log.jsonl):
    ``[{"step": S, "metric": NAME, SCORE: value, ...}]``, empty when it recorded none."""
    from ganzoo.utils.plots import read_log, training_evals

    if not (run / "log.jsonl").is_file():
        return []
    return [{"step": e["step"], "metric": e["metric"], **e["scores"]} for e in training_evals(read_log(run))]


def score_recipe(recipe: Recipe, seeds: int, budget: str, runs: Path, out: Path) -> dict[str, Any]:
    """Score every run of ``recipe`` under ``runs/<seed>/`` (the ``--runs-from`` layout).

    :returns: ``{"runs": [...], "picture": ...}`` with one entry per run and seed.
    """
    keys = [c.key for c in recipe.commands]
    summary: dict[str, Any] = {"runs": [], "picture": None, "curve": None}
    summary["timed"] = _timed_reruns(runs / "timed.json", keys)
    for seed in range(seeds):
        folder = runs / str(seed)
        times = _read_times(folder)
        for command in recipe.commands:
            run = folder / command.key
            if not (run / "model.safetensors").is_file() or command.key not in times:
                if recipe.name != "anomaly":
                    raise Skip(f"{run} or its wall time in {folder / 'times.json'} is absent")
                continue  # a digit not run: the verdict counts the digits it has
            seconds, quiet = times[command.key]
            same = times[command.same_time_as][0] if command.same_time_as in times else None
            row: dict[str, Any] = {
                "key": command.key,
                "seed": seed,
                "command": _shown(train_args(command, seed, budget, same)),
                "train_seconds": seconds,
                "quiet": quiet,
                "evals": {},
            }
            n = recipe.tiny_eval_n if budget == "tiny" else recipe.eval_n
            for label, extra in recipe.evals:
                row["evals"][label] = evaluate_run(run, extra, n)
            stage = _stage_model(run, recipe.stage_model) if recipe.stage_model else None
            if recipe.stage_model:
                row["stage_model"] = None if stage is None else str(stage.relative_to(run))
                if stage is not None:
                    for label, extra in recipe.evals:
                        row["evals"][f"{label}, SRResNet stage"] = evaluate_run(stage, extra, n, run=run)
            row["curve"] = training_curve(run)
            if seed == 0 and command is recipe.commands[0]:
                out.mkdir(parents=True, exist_ok=True)
                if row["curve"]:
                    plotted, _ = _ganzoo(["plot", str(run), "-o", str(out / f"recipes_{recipe.name}_curve.png")])
                    _checked(plotted, "ganzoo plot")
                    summary["curve"] = f"recipes_{recipe.name}_curve.png"
                path = out / f"recipes_{recipe.name}.png"
                shown = sr_stage_picture(stage, run, path) if stage is not None else picture(run, path)
                row["picture"] = summary["picture"] = shown
            print(f"recipes {recipe.name} seed {seed} {command.key}: {row['evals']}", file=sys.stderr, flush=True)
            summary["runs"].append(row)
    return summary


def scores_from_report(recipe: Recipe, seeds: int, runs: Path, out: Path) -> dict[str, Any]:
    """The summary of the recipe's earlier report ``out/recipes_<name>.json`` (its commands, scores, curves and
    picture, seeds below ``seeds``) with the wall times read anew from ``runs`` (each seed's ``times.json`` and the
    recipe's ``timed.json``): a report whose wall times change is written again without evaluating any model.

    :raises Skip: when the report or a run's wall time is absent.
    """
    path = out / f"recipes_{recipe.name}.json"
    if not path.is_file():
        raise Skip(f"{path} is absent: there are no scores to report again")
    keys = [c.key for c in recipe.commands]
    earlier = json.loads(path.read_text())
    summary: dict[str, Any] = {"runs": [], "picture": None, "curve": None, "times_from": str(runs.parent)}
    summary["timed"] = _timed_reruns(runs / "timed.json", keys)
    summary["runs_from"] = earlier.get("runs_from")  # where the scored runs were
    for row in earlier["runs"]:
        if row["seed"] >= seeds:
            continue
        times = _read_times(runs / str(row["seed"]))
        if row["key"] not in times:
            raise Skip(f"the wall time of {row['key']} (seed {row['seed']}) is absent from its times.json")
        row["train_seconds"], row["quiet"] = times[row["key"]]
        summary["runs"].append(row)
        summary["picture"] = summary["picture"] or row.get("picture")
    curve = f"recipes_{recipe.name}_curve.png"
    if (out / curve).is_file() and any(r.get("curve") for r in summary["runs"]):
        summary["curve"] = curve
    return summary


# ---- the report ----------------------------------------------------------------------------------------------------


def _fmt(x: Any) -> str:
    return f"{x:.4g}" if isinstance(x, float) else str(x)


def write_report(
    recipe: Recipe, summary: dict[str, Any], budget: str, seeds: int, out: Path, runs_from: Path | None
) -> Path:
    """``<out>/recipes_<name>.md/.json`` (the picture is already there): the table of mean ± s.e. over seeds per
    command and evaluation, the baselines ``ganzoo eval`` printed, the verdicts, and the per-seed rows."""
    report = Report(f"recipes_{recipe.name}", out, budget, seeds)
    report.raw.update(
        {
            "recipe": recipe.name,
            "runs": summary["runs"],
            "timed": summary.get("timed", []),
            # A report written again with --times-only keeps the folder its scored runs came from.
            "runs_from": summary.get("runs_from", None if runs_from is None else str(runs_from)),
            **({"times_from": summary["times_from"]} if "times_from" in summary else {}),
        }
    )
    runs = summary["runs"]
    length = (
        "the tags' own lengths"
        if budget != "tiny"
        else f"--steps {TINY_STEPS}, -n {TINY_EVAL_N} (a smoke test, not a result)"
    )
    source = (
        "trained here, one command at a time with torch's default threads"
        if runs_from is None
        else f"runs read from `--runs-from` ({len(runs)} runs)"
    )
    conditions = ""
    if runs_from is not None and (runs_from / recipe.name / "conditions.txt").is_file():
        # How the hand-made runs shared the machine: their wall times mean nothing without it.
        conditions = " " + (runs_from / recipe.name / "conditions.txt").read_text().strip()
    report.add(
        f"Budget `{budget}`: {length}, {seeds} seed(s), {source}. Wall time: the whole `ganzoo train` command."
        + conditions,
        "",
    )
    # One table per evaluation: a row per command (and per baseline ganzoo eval printed), a column per score.
    labels = [label for label, _ in recipe.evals] + [
        f"{label}, SRResNet stage" for label, _ in recipe.evals if recipe.stage_model
    ]
    for label in labels:
        present = [r for r in runs if label in r["evals"]]
        if not present:
            continue
        keys: list[str] = []
        for r in present:
            keys += [k for k in r["evals"][label]["scores"] if k not in keys]
        rows = []
        shown_baselines: set[tuple[str, str]] = set()
        for command in recipe.commands:
            mine = [r for r in present if r["key"] == command.key]
            if not mine:
                continue
            secs = [r["train_seconds"] for r in mine]
            rows.append(
                [command.label]
                + [
                    mean_se([r["evals"][label]["scores"][k] for r in mine if k in r["evals"][label]["scores"]], 3)
                    for k in keys
                ]
                + [f"{_mean(secs):.0f} (max {max(secs):.0f})"]
            )
            bases = sorted({b for r in mine for b in r["evals"][label]["baselines"]})
            for b in bases:
                vals = [r["evals"][label]["baselines"].get(b, {}) for r in mine]
                # A baseline of the data (identity, bicubic) is the same for every command: shown once.
                if (b, json.dumps(vals, sort_keys=True)) in shown_baselines:
                    continue
                shown_baselines.add((b, json.dumps(vals, sort_keys=True)))
                rows.append(
                    [f"baseline `{b}` (ganzoo eval, beside {command.key})"]
                    + [mean_se([v[k] for v in vals if k in v], 3) for k in keys]
                    + [""]
                )
        eval_cmd = present[0]["evals"][label]["command"]
        columns = ["model", *keys, "train s, mean (max)"]
        if len(keys) > len(rows):  # many scores (text-to-image): a row per score reads better
            rows = [list(col) for col in zip(*rows)]
            columns, rows = ["score", *rows[0][:]], [[c, *r] for c, r in zip(columns[1:], rows[1:])]
        report.add(f"**{label}** (`{eval_cmd}`):", "", *table(columns, rows), "")
    if not runs:
        report.add("No runs were scored.", "")
    else:
        report.add(*recipe.verdict(recipe, summary), "")
    per_seed = []
    for r in runs:
        first = next(iter(r["evals"].values()), {"scores": {}, "seconds": 0.0})
        shown = list(first["scores"].items())
        scores = ", ".join(f"{k} {_fmt(v)}" for k, v in shown[:PER_SEED_SCORES])
        scores += f", ... ({len(shown) - PER_SEED_SCORES} more)" if len(shown) > PER_SEED_SCORES else ""
        eval_s = sum(e["seconds"] for e in r["evals"].values())
        train_s = f"{r['train_seconds']}" + ("" if r.get("quiet", True) else " (shared)")
        per_seed.append([r["seed"], f"`{r['command']}`", train_s, f"{eval_s:.1f}", scores])
    report.add(
        'Per seed (scores of the first evaluation; every evaluation in the JSON; "shared": the run shared the '
        "machine, so its wall time is not a timing):",
        "",
    )
    report.add(
        *table(["seed", "command", "train s", "eval s", "scores"], per_seed, right=[True, False, True, True, False]), ""
    )
    if summary.get("timed"):
        reruns = [[t["seed"], f"`{t['key']}`", t["train_seconds"]] for t in summary["timed"]]
        report.add("Timed alone (`timed.json`: the same commands rerun alone on the machine to time them):", "")
        report.add(*table(["seed", "run", "train s"], reruns, right=[True, False, True]), "")
    for r in runs:
        if r.get("stage_model", "absent") is None:
            report.add(f"Seed {r['seed']}: the run has no model of its {recipe.stage_model} stage (stages/).", "")
    curves = [r for r in runs if r.get("curve") and r["key"] == recipe.commands[0].key]
    if curves:
        metric = curves[0]["curve"][0]["metric"]
        names = [k for k in curves[0]["curve"][0] if k not in ("step", "metric")]
        steps = sorted({p["step"] for r in curves for p in r["curve"]})
        rows = []
        for step in steps:
            at = [p for r in curves for p in r["curve"] if p["step"] == step]
            rows.append([step, *(mean_se([p[k] for p in at if k in p], 3) for k in names), len(at)])
        report.add(
            f"Quality over time (`--eval-every`: the headline `{metric}` of the EMA model while training, on the "
            "data `ganzoo eval` scores by default whatever the run's seed, with the run's `--eval-n` items, so a "
            "seed's last point is its `ganzoo eval` row above only where that N is the evaluation's; mean ± s.e. "
            f"over seeds; curve of seed 0: `{summary['curve']}`):",
            "",
            *table(["step", *names, "seeds"], rows),
            "",
        )
    if summary["picture"]:
        report.add(f"Picture: `recipes_{recipe.name}.png`, seed 0 of `{recipe.commands[0].tag}`: {summary['picture']}.")
    return report.write()


def run(
    budget: str,
    seeds: int,
    out: Path,
    only: Sequence[str] | None = None,
    runs_from: Path | None = None,
    times_only: bool = False,
) -> Path:
    """Train (or read from ``runs_from``) and score the recipes ``only`` (default: all); write
    ``<out>/recipes_<name>.md/.json/.png`` for each.

    :param budget: a budget of :data:`benchmarks.quality.common.BUDGETS`; ``tiny`` is a smoke test.
    :param seeds: seeds 0..seeds-1 per command.
    :param out: the report folder.
    :param only: recipe names of :data:`RECIPES`.
    :param runs_from: score the runs in this folder (layout in the module docstring) instead of training.
    :param times_only: with ``runs_from``: keep the scores of the reports already in ``out`` and read only the wall
        times (and ``conditions.txt``) from ``runs_from`` (:func:`scores_from_report`).
    :returns: the first report written.
    """
    if times_only and runs_from is None:
        raise ValueError("times_only needs runs_from: the folder of the wall times")
    names = list(only or RECIPES)
    unknown = [n for n in names if n not in RECIPES]
    if unknown:
        raise ValueError(f"unknown recipe {unknown[0]!r}; valid: {', '.join(RECIPES)}")
    written: list[Path] = []
    failed: list[str] = []
    for name in names:
        recipe = RECIPES[name]
        if budget == "tiny" and name == "anomaly":
            recipe = dataclasses.replace(recipe, commands=recipe.commands[:2])  # digit 0 only
        try:
            for need in recipe.needs:
                common.shared(*need.split("/"))
            with tempfile.TemporaryDirectory() as tmp:
                if runs_from is None:
                    runs = Path(tmp) / name
                    for seed in range(seeds):
                        train_recipe(recipe, seed, budget, runs / str(seed))
                else:
                    runs = Path(runs_from) / name
                if times_only:
                    summary = scores_from_report(recipe, seeds, runs, Path(out))
                else:
                    summary = score_recipe(recipe, seeds, budget, runs, Path(out))
            path = write_report(recipe, summary, budget, seeds, Path(out), runs_from)
        except Skip as e:
            print(f"recipes {name}: skipped: {e}")
            continue
        except Exception as e:  # one recipe's failure must not lose the others' reports
            failed.append(f"{name}: {type(e).__name__}: {e}")
            print(f"recipes {name}: FAILED: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
            continue
        print(f"recipes {name}: {path}", file=sys.stderr, flush=True)
        written.append(path)
    if failed:
        raise RuntimeError("; ".join(failed))
    if not written:
        raise Skip(f"no recipe could run ({', '.join(names)})")
    return written[0]
