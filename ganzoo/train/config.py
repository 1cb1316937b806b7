"""How to run training: :class:`TrainConfig`, and the resolution of its ``auto`` device and precision."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

from ..config import MAX_EVAL_N, MAX_SEED, MAX_STEPS, help, require
from ..errors import ConfigError, GanzooError

Precision = Literal["auto", "fp32", "bf16", "fp16"]


class TrainingDiverged(GanzooError):
    """Training produced non-finite values that skipping and rolling back could not cure."""


@dataclass
class TrainConfig:
    """How to run training (what to train is the variant's config)."""

    steps: int = help(
        "total training steps, all stages together (ganzoo train without --steps: the variant's default_steps "
        "when it has one)",
        1000,
    )
    batch_size: int | None = help("batch size; default: the variant's paper value", None)
    device: str = help("'auto' (CUDA when present, else CPU), 'cpu', 'cuda', 'cuda:1' ...", "auto")
    precision: Precision = help(
        "'auto' = bf16 on CUDA and on CPUs with native bf16, else fp32 (always fp32 for a model config whose "
        "reduced_precision is false); or fp32/bf16/fp16",
        "auto",
    )
    compile: bool = help("torch.compile each network separately (eager for double-backward phases)", False)
    channels_last: bool | None = help("channels_last memory format; default: the variant's preference", None)
    ema_decay: float = help(
        "largest decay of the generator EMA used for samples and export; step t uses min(ema_decay, "
        "1 - (1 + t)^(-2/3)), which reaches 0.999 after about 31,600 steps; 0 disables",
        0.999,
    )
    seed: int = help("seed of weights, noise and data order", 0)
    num_workers: int | None = help("data loader worker processes; default 0 on CPU, 4 on CUDA", None)
    log_every: int = help("read losses from the device and log them every N steps", 50)
    sample_every: int = help("write a sample grid every N steps (0: only at the end)", 500)
    ckpt_every: int = help("write a checkpoint every N steps (0: only at the end)", 1000)
    keep: int = help("checkpoints to keep (oldest deleted first)", 3)
    n_samples: int = help("images in a sample grid", 64)
    eval_every: int = help(
        "record the task's headline metric (FID, FD-dom, modes, PSNR, AUROC ...) of the EMA model every N steps and "
        "at the end (0: never)",
        0,
    )
    eval_n: int = help("samples per training-time evaluation (real-data statistics come from the feature cache)", 500)
    max_minutes: float = help(
        "stop this session's training loop after this many minutes and finish as at the end (last checkpoint, "
        "export); the learning-rate schedules still follow steps (0: no limit)",
        0.0,
    )
    progress: bool = help("show a progress bar", True)
    tensorboard: bool = help("also log to TensorBoard when it is installed", True)
    max_skips: int = help("consecutive steps with non-finite loss/gradients (skipped) before on_nonfinite acts", 20)
    on_nonfinite: Literal["rollback", "stop"] = help(
        "after max_skips: roll back to the last checkpoint with half the learning rate, or stop", "rollback"
    )

    def validate(self) -> None:
        """Check every field; the device must exist here.

        :raises ConfigError: naming the bad value and what is allowed.
        """
        require(self, at_least_1=("steps", "log_every", "keep", "n_samples", "max_skips"))
        if self.steps > MAX_STEPS:
            raise ConfigError(f"steps must be in 1..{MAX_STEPS:,} (2^53), got {self.steps:,}")
        if not 2 <= self.eval_n <= MAX_EVAL_N:
            raise ConfigError(f"eval_n must be in 2..{MAX_EVAL_N:,}, got {self.eval_n}")
        require(self, non_negative=("sample_every", "ckpt_every", "eval_every"))
        if not (math.isfinite(self.max_minutes) and self.max_minutes >= 0):
            raise ConfigError(f"max_minutes must be a finite number >= 0 (0: no limit), got {self.max_minutes}")
        if self.batch_size is not None and self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {self.batch_size}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if not 0 <= self.seed <= MAX_SEED:
            raise ConfigError(f"seed must be an integer in 0..{MAX_SEED}, got {self.seed}")
        resolve_device(self.device)


def resolve_device(spec: str) -> torch.device:
    """The device ``spec`` names (``"auto"``: CUDA when present, else the CPU).

    :param spec: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    :raises ConfigError: for an unknown or unavailable device.
    """
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(spec)
    except (RuntimeError, ValueError):
        raise ConfigError(f"device {spec!r} is not valid; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {spec!r} asked for, but CUDA is not available here; use --device cpu")
    if dev.type not in ("cpu", "cuda"):
        raise ConfigError(f"device {spec!r} is not supported; use auto, cpu, cuda or cuda:N")
    return dev


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 natively (oneDNN), so that ``auto`` precision picks it on the CPU."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_precision(precision: str, device: torch.device) -> torch.dtype:
    """The autocast dtype of ``precision`` on ``device`` (``torch.float32`` means no autocast).

    :param precision: ``"auto"``, ``"fp32"``, ``"bf16"`` or ``"fp16"``.
    :param device: the training device.
    :raises ConfigError: for fp16 without CUDA.
    """
    if precision == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if cpu_has_bf16() else torch.float32
    if precision == "fp16" and device.type != "cuda":
        raise ConfigError("precision fp16 needs a CUDA device; on CPU use bf16 or fp32")
    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
