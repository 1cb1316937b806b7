"""Training: :class:`Trainer` (the loop), :class:`TrainConfig` (how to run), :class:`EMA`, checkpoints, data
plumbing, distributed training and run logging, one module each."""

from .config import TrainConfig, TrainingDiverged, resolve_device, resolve_precision
from .ema import EMA
from .trainer import Trainer

__all__ = ["EMA", "TrainConfig", "Trainer", "TrainingDiverged", "resolve_device", "resolve_precision"]
