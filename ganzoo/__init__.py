"""ganzoo: a plugin-based model zoo of GAN variants on PyTorch.

>>> import ganzoo
>>> ganzoo.list_variants("dcgan*")
>>> model = ganzoo.create("dcgan", image_size=32)
"""

__version__ = "0.1.0"

from .api import create, list_plugins, load, save_model
from .errors import CheckpointError, ConfigError, GanzooError, PluginError, UnknownNameError
from .hookspecs import hookimpl
from .registry import list_variants
from .train.trainer import TrainConfig, Trainer
from .variant import GANVariant, Phase, Stage, StepState, Task

__all__ = [
    "CheckpointError",
    "ConfigError",
    "GANVariant",
    "GanzooError",
    "Phase",
    "PluginError",
    "Stage",
    "StepState",
    "Task",
    "TrainConfig",
    "Trainer",
    "UnknownNameError",
    "create",
    "hookimpl",
    "list_plugins",
    "list_variants",
    "load",
    "save_model",
]
