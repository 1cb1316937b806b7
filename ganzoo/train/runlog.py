"""What a run reports, and where: ``run.json``, ``log.jsonl``, TensorBoard, the progress bar, the
``ganzoo_train_event`` hooks and the ``losses.png`` picture. Only the main process (rank 0) writes or shows anything;
the other processes get a :class:`RunLog` that stays silent, so the loop calls it the same way on every rank.

Besides what the trainer hands it, ``run.json`` records two facts that model cards (:mod:`ganzoo.cards`) report:
``data_digest``, a digest of the data the spec reads (:func:`ganzoo.metrics.cache.data_content_digest`: names, sizes
and modification times of the files under a path argument, ``procedural:SPEC`` for generated data), and the wall
time of the training loop: ``sessions``, one ``{"from", "to", "seconds"}`` entry per stretch of steps run in one
process (a resume adds one; a resume from an earlier checkpoint drops the sessions past it), and ``wall_seconds``,
their sum. A process killed without Ctrl-C records no session for its last stretch.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

from ..utils.files import atomic_write_bytes
from .distributed import Dist


class LossMeter:
    """Sums the step losses on the device and reads them on the host only when asked (one sync per log record,
    none per step)."""

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: dict[str, int] = {}

    def add(self, losses: dict[str, torch.Tensor]) -> None:
        """Add one step's detached device losses (and its ``skipped`` flag)."""
        for key, val in losses.items():
            self.sums[key] = self.sums[key] + val if key in self.sums else val.clone()
            self.counts[key] = self.counts.get(key, 0) + 1

    def read(self, dist: Dist | None) -> tuple[dict[str, float], int]:
        """The mean of each loss since the last read (averaged over all ranks) and the number of skipped steps, then
        start afresh. Under distributed training every rank must call it (a collective)."""
        sums, counts = self.sums, self.counts
        self.sums, self.counts = {}, {}
        skipped = int(sums.pop("skipped", torch.zeros(())))  # the same on every rank
        counts.pop("skipped", None)
        if dist is not None:  # the only cross-rank sync for logging, every log_every steps
            sums = dist.mean(sums)
        return {k: float(s) / counts[k] for k, s in sums.items()}, skipped


class Throughput:
    """Images per second (all ranks together) since the last reading."""

    def __init__(self, step: int, global_batch: int) -> None:
        self.global_batch = global_batch
        self.restart(step)

    def restart(self, step: int) -> None:
        self.t0, self.step0 = time.perf_counter(), step

    def read(self, step: int) -> float:
        """Images per second since the last reading or restart; restarts the clock."""
        ips = (step - self.step0) * self.global_batch / max(time.perf_counter() - self.t0, 1e-9)
        self.restart(step)
        return ips


class RunLog:
    """The run's reports in ``out``.

    :param out: the run directory.
    :param main: whether this process reports (rank 0); the others' calls do nothing.
    :param title: the run's name in the progress bar and on the loss picture (the registered variant name).
    :param source: the object handed to ``ganzoo_train_event`` hooks as ``trainer``.
    :param progress: show a progress bar.
    :param tensorboard: also write TensorBoard scalars when TensorBoard is installed.
    """

    def __init__(
        self, out: Path, main: bool, title: str, source: Any, progress: bool = True, tensorboard: bool = True
    ) -> None:
        self.out, self.main, self.title, self.source = Path(out), main, title, source
        self.progress, self.tensorboard = progress and main, tensorboard and main
        self._bar: Any = None
        self._tb: Any = None
        self._run: dict[str, Any] | None = None
        self._earlier: list[dict[str, Any]] = []  # the sessions run.json held before this process rewrote it
        self._sessions: list[dict[str, Any]] = []
        self._t0: float | None = None
        self._from = self._step = 0

    @property
    def log_path(self) -> Path:
        return self.out / "log.jsonl"

    def write_run_json(self, run: dict[str, Any]) -> None:
        """Record what runs, in ``run.json`` (rewritten on resume), with the data's digest and the training sessions
        recorded so far (see the module docstring).

        :param run: what the trainer records (``data`` is the data spec).
        """
        if not self.main:
            return
        run = dict(run)
        if isinstance(run.get("data"), str):
            run["data_digest"] = _data_digest(run["data"])
        self._earlier = _recorded_sessions(self.out / "run.json")
        self._run = run
        self._write(self._earlier)

    def _write(self, sessions: list[dict[str, Any]]) -> None:
        assert self._run is not None
        run = {**self._run, "sessions": sessions, "wall_seconds": round(sum(s["seconds"] for s in sessions), 2)}
        atomic_write_bytes(self.out / "run.json", json.dumps(run, indent=2).encode())

    def event(self, event: str, info: dict[str, Any]) -> None:
        """Fire the ``ganzoo_train_event`` hooks (main process only)."""
        if not self.main:
            return
        from ..plugins import get_plugin_manager

        get_plugin_manager().hook.ganzoo_train_event(event=event, trainer=self.source, info=info)

    def open(self, total: int, initial: int) -> None:
        """Start the progress bar and TensorBoard writer for a run from step ``initial`` to ``total``, and the clock
        of this training session."""
        # Sessions past the step this one starts from ran steps the resume discards; a run from 0 starts afresh.
        self._sessions = [s for s in self._earlier if s["to"] <= initial] if initial > 0 else []
        self._t0, self._from, self._step = time.perf_counter(), initial, initial
        if self.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(str(self.out / "tensorboard"))
            except Exception:  # noqa: BLE001 - tensorboard not installed or broken: JSONL logs only
                self._tb = None
        if self.progress:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, initial=initial, desc=f"train {self.title}", unit="step", dynamic_ncols=True)

    def record(self, record: dict[str, Any], losses: dict[str, float], img_per_s: float) -> None:
        """One log record: a ``log.jsonl`` line, TensorBoard scalars, the progress bar's figures and a ``log`` event.

        :param record: the line to write; must hold ``step``.
        :param losses: the mean losses since the previous record, keyed ``phase/name``.
        :param img_per_s: throughput of all ranks together.
        """
        step = record["step"]
        self._step = step
        if self.main:
            with open(self.log_path, "a") as f:
                f.write(json.dumps(record) + "\n")
        if self._tb is not None:
            for k, val in record.items():
                if isinstance(val, (int, float)) and k != "step":
                    self._tb.add_scalar(k, val, step)
        if self._bar is not None:
            shown = {
                k.split("/")[0] + "/" + k.split("/")[-1]: f"{x:.3g}" for k, x in losses.items() if k.endswith("/loss")
            }
            self._bar.set_postfix(**shown, img_s=f"{img_per_s:.0f}")
        self.event("log", {"step": step, "losses": losses, "img_per_s": img_per_s})

    def record_eval(self, record: dict[str, Any]) -> None:
        """A training-time evaluation: a ``log.jsonl`` line, TensorBoard scalars and an ``eval`` event.

        :param record: the line to write; holds ``step`` and ``eval/...`` values.
        """
        step = record["step"]
        if self.main:
            with open(self.log_path, "a") as f:
                f.write(json.dumps(record) + "\n")
        if self._tb is not None:
            for k, val in record.items():
                if isinstance(val, (int, float)) and k not in ("step", "eval/n"):
                    self._tb.add_scalar(k, val, step)
        if self._bar is not None:
            shown = {k[len("eval/") :]: f"{x:.4g}" for k, x in record.items() if isinstance(x, float)}
            self._bar.write(f"step {step}: " + ", ".join(f"{k} {x}" for k, x in shown.items()))
        self.event("eval", dict(record))

    def advance(self, step: int) -> None:
        """Move the progress bar to ``step`` (one step on, or back after a rollback)."""
        self._step = step
        if self._bar is not None:
            if step >= self._bar.n:
                self._bar.update(step - self._bar.n)  # tqdm itself limits how often it redraws
            else:
                self._bar.n = step

    def close(self) -> None:
        """Close the progress bar and TensorBoard writer and record the session's wall time in ``run.json``
        (idempotent)."""
        if self._t0 is not None and self.main and self._run is not None:
            seconds = round(time.perf_counter() - self._t0, 2)
            self._sessions.append({"from": self._from, "to": self._step, "seconds": seconds})
            try:
                self._write(self._sessions)
            except OSError as e:  # the run itself is intact; only its wall time goes unrecorded
                print(f"ganzoo: could not record the wall time in run.json: {e}", file=sys.stderr)
        self._t0 = None
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self._tb is not None:
            self._tb.close()
            self._tb = None

    def note(self, message: str) -> None:
        """A one-line message on stderr from the main process."""
        if self.main:
            print(message, file=sys.stderr)

    def plot_losses(self) -> Path | None:
        """``losses.png`` beside ``log.jsonl``: a picture of the run's curves. A plot must never fail a run.

        :returns: the picture's path, or ``None`` when there is nothing to draw or drawing failed (said on stderr).
        """
        if not self.main or not self.log_path.exists():
            return None
        from ..utils.plots import plot_losses

        try:
            return Path(plot_losses(self.out, title=f"{self.title}: losses"))
        except Exception as e:  # noqa: BLE001 - the run itself succeeded; say why the picture is missing
            print(f"ganzoo: could not draw losses.png: {e}", file=sys.stderr)
            return None


def _data_digest(spec: str) -> str | None:
    """The digest of the data ``spec`` reads, or ``None`` when it cannot be read (the dataset reports that itself)."""
    from ..metrics.cache import data_content_digest

    try:
        return data_content_digest(spec)
    except OSError:
        return None


def _recorded_sessions(path: Path) -> list[dict[str, Any]]:
    """The well-formed ``sessions`` of an existing ``run.json`` (none when it is missing or unreadable)."""
    try:
        found = json.loads(path.read_text()).get("sessions")
    except (OSError, ValueError, AttributeError):
        return []
    if not isinstance(found, list):
        return []
    keys = ("from", "to", "seconds")
    return [s for s in found if isinstance(s, dict) and all(isinstance(s.get(k), (int, float)) for k in keys)]
