"""The contract between a GAN variant and the trainer.

A variant owns its networks and says *what* to compute: its stages, the phases of each stage and the loss of each
phase. The trainer owns *how*: device, precision, backward, optimizer steps, gradient toggling, EMA, schedules,
checkpoints, logging. Variants never call ``.backward()``, ``optimizer.step()`` or ``.item()``.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from .config import apply_overrides, to_dict

Batch = dict[str, Any]
Losses = dict[str, Tensor]


class Task(str, enum.Enum):
    """What a variant learns, and so the batch schema its datasets yield (images are uint8 ``C x H x W`` on the
    host and ``[-1, 1]`` floats by the time ``loss`` sees them)."""

    UNCONDITIONAL = "unconditional"  # {"image", "label" (-1 if none)}; 2D toy data: "image" is a float (2,) point
    PAIRED = "paired"  # {"a", "b"}: translate a -> b, b is ground truth
    UNPAIRED = "unpaired"  # {"a", "b"}: independent draws from the two domains
    SUPER_RESOLUTION = "super_resolution"  # {"lr", "hr"}
    TEXT_TO_IMAGE = "text_to_image"  # {"image", "tokens" (L,), "length", "caption"}
    ANOMALY = "anomaly"  # {"image", "label" (0 normal, 1 anomalous)}

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Phase:
    """One optimizer and the loss that drives it.

    :param name: the phase name ``loss()`` receives (``"d"``, ``"g"``, ``"d_reg"`` ...).
    :param modules: attribute names of the sub-modules whose parameters this phase optimizes.
    :param lr: Adam learning rate.
    :param betas: Adam betas.
    :param weight_decay: Adam weight decay.
    :param every: run this phase every ``every`` steps (lazy regularization).
    """

    name: str
    modules: tuple[str, ...]
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    weight_decay: float = 0.0
    every: int = 1


@dataclass(frozen=True)
class Stage:
    """A run of training steps with a fixed list of phases, in the order they run each step.

    :param steps: length of the stage in steps; ``None`` means "until the end of training" (last stage only).
    """

    name: str
    phases: tuple[Phase, ...]
    steps: int | None = None


@dataclass
class StepState:
    """Scratchpad shared by the phases of one step, so e.g. the generator's forward runs once per step and is
    reused by the discriminator's phase."""

    step: int
    stage: str
    cache: dict[str, Any] = field(default_factory=dict)


class GANVariant(nn.Module):
    """Base class of every variant. Subclasses set the class attributes and implement the abstract methods.

    Class attributes:

    * ``name``: the family name, lowercase (``"dcgan"``).
    * ``task``: a :class:`Task`.
    * ``Config``: a dataclass with paper defaults and one help text per field.
    * ``tags``: named presets of config overrides, selected as ``family.tag``.
    * ``ema_modules``: sub-modules that get an exponential moving average (the generators).
    * ``channels_last``: whether channels_last memory format helps this variant's convolutions.
    * ``tiny``: config overrides giving a minutes-to-milliseconds version for tests and the conformance kit
      (small widths and images, one-step stages); the networks must keep their structure.
    * ``default_data_spec``: the data spec used when the user gives none (a built-in procedural dataset); a config
      field ``data`` overrides it, so tags can pick their dataset.
    * ``training_state``: ``state_dict`` key prefixes of state only training needs (CycleGAN's history pools):
      checkpoints keep it, exported model files leave it out, and loading a model file starts it afresh.
    """

    name: ClassVar[str] = ""
    task: ClassVar[Task]
    Config: ClassVar[type]
    tags: ClassVar[dict[str, dict[str, Any]]] = {}
    ema_modules: ClassVar[tuple[str, ...]] = ("G",)
    channels_last: ClassVar[bool] = True
    default_data_spec: ClassVar[str] = "shapes"
    tiny: ClassVar[dict[str, Any]] = {}
    description: ClassVar[str] = ""
    training_state: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: Any = None):
        super().__init__()
        self.config = config if config is not None else self.Config()

    # ---- what subclasses implement -------------------------------------------------------------------------------
    def stages(self) -> Sequence[Stage]:
        raise NotImplementedError

    def loss(self, phase: str, batch: Batch, state: StepState) -> Losses:
        """The losses of ``phase``: a dict whose ``"loss"`` entry is minimized; other entries are detached
        diagnostics that the trainer logs as ``phase/key``."""
        raise NotImplementedError

    @torch.no_grad()
    def generate(self, **inputs: Any) -> Tensor:
        """The task's inference (noise ``z``, input images ``a``, low-resolution ``lr``, ``captions`` ...)."""
        raise NotImplementedError

    # ---- hooks with defaults -------------------------------------------------------------------------------------
    @property
    def default_data(self) -> str:
        return getattr(self.config, "data", None) or self.default_data_spec

    @property
    def batch_size(self) -> int:
        """The paper's batch size, used when the trainer is given none."""
        return int(getattr(self.config, "batch_size", 64))

    def data_options(self) -> dict[str, Any]:
        """Task-specific extras handed to the dataset factory in ``DataRequest.options``."""
        return {}

    @property
    def image_size(self) -> int:
        return int(getattr(self.config, "image_size", 64))

    @property
    def channels(self) -> int:
        return int(getattr(self.config, "channels", 3))

    def sample_inputs(self, n: int, generator: torch.Generator, batch: Batch | None = None) -> dict[str, Any]:
        """Fixed inputs for the periodic sample grids (noise for generators, a held batch for translators)."""
        raise NotImplementedError

    def sample_images(self, inputs: dict[str, Any]) -> Tensor:
        """Images (``[-1, 1]``, ``B x C x H x W``) to put in a sample grid for ``inputs``."""
        return self.generate(**inputs)

    def lr_factor(self, phase: Phase, step: int, total_steps: int) -> float:
        """Learning-rate multiplier at ``step``; a pure function of the step so that resume is exact."""
        return 1.0

    def on_step_end(self, step: int) -> None:
        """Called by the trainer after all phases of a step (e.g. to refresh a history pool)."""

    def extra_metadata(self) -> dict[str, Any]:
        """JSON-serialisable state saved with the model beyond its tensors (a vocabulary, a threshold)."""
        return {}

    def load_extra_metadata(self, data: dict[str, Any]) -> None:
        """Restore what :meth:`extra_metadata` returned."""

    # ---- helpers --------------------------------------------------------------------------------------------------
    @classmethod
    def make_config(cls, overrides: dict[str, Any] | None = None) -> Any:
        return apply_overrides(cls.Config(), overrides or {})

    def config_dict(self) -> dict[str, Any]:
        return to_dict(self.config)

    @property
    def device(self) -> torch.device:
        for p in self.parameters():
            return p.device
        for b in self.buffers():
            return b.device
        return torch.device("cpu")

    def optimized_modules(self) -> list[str]:
        names: list[str] = []
        for stage in self.stages():
            for ph in stage.phases:
                for m in ph.modules:
                    if m not in names:
                        names.append(m)
        return names


def replace_config(config: Any, **changes: Any) -> Any:
    return dataclasses.replace(config, **changes)
