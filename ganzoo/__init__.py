"""ganzoo: a plugin-based model zoo of GAN variants on PyTorch.

>>> import ganzoo
>>> ganzoo.list_variants("dcgan*")
>>> model = ganzoo.create("dcgan", image_size=32)
"""

from ._version import __version__
from .api import create, import_weights, list_plugins, load, save_model
from .errors import CheckpointError, ConfigError, GanzooError, PluginError, UnknownNameError
from .hookspecs import hookimpl
from .registry import list_variants
from .train import TrainConfig, Trainer, TrainingDiverged
from .variant import GANVariant, Phase, Stage, StepState, Task, TrainInfo

__all__ = [
    "__version__",
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
    "TrainInfo",
    "Trainer",
    "TrainingDiverged",
    "UnknownNameError",
    "create",
    "hookimpl",
    "import_weights",
    "list_plugins",
    "list_variants",
    "load",
    "save_model",
]
