from .trainer import EMA, TrainConfig, Trainer

__all__ = ["EMA", "TrainConfig", "Trainer"]
