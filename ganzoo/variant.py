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
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from .config import apply_overrides, to_dict

Batch = dict[str, Any]
Losses = dict[str, Tensor]


class Task(str, enum.Enum):
    """What a variant learns, and so the batch schema its datasets yield (images are uint8 ``C x H x W`` on the
    host and ``[-1, 1]`` floats by the time ``loss`` sees them)."""

    UNCONDITIONAL = "unconditional"
    """Generation from noise. Items ``{"image": uint8 C x H x W, "label": int64}``; ``label`` is the class (-1 when
    the data has none), used by class-conditional variants. 2D toy data (``ring8``, ``grid25``): ``"image"`` is a
    float ``(2,)`` point."""
    PAIRED = "paired"
    """Paired translation: ``{"a": uint8 C x H x W, "b": uint8 C x H x W}``, translate ``a`` -> ``b``; ``b`` is the
    ground truth of ``a``."""
    UNPAIRED = "unpaired"
    """Unpaired translation: ``{"a": uint8 C x H x W, "b": uint8 C x H x W}``, independent draws from domains A and
    B."""
    SUPER_RESOLUTION = "super_resolution"
    """Super-resolution: ``{"lr": uint8 C x H/s x W/s, "hr": uint8 C x H x W}`` for the scale ``s``
    (``DataRequest.options["scale"]``)."""
    TEXT_TO_IMAGE = "text_to_image"
    """Text-to-image: ``{"image": uint8 C x H x W, "tokens": int64 (L,), "length": int64, "caption": str}``;
    ``tokens`` are the caption's word ids, padded to ``L``, of which the first ``length`` are words. The dataset
    tokenizes with the word list in ``DataRequest.options["vocab"]`` when given (a model's vocabulary), else with
    one it fits on the train split's captions; either way it exposes it as ``dataset.vocab``
    (:class:`ganzoo.data.captions.Vocabulary`), which a variant adopts in ``prepare_data``."""
    ANOMALY = "anomaly"
    """Anomaly detection: ``{"image": uint8 C x H x W, "label": int64}``, 0 normal, 1 anomalous (training data is
    normal only)."""

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Phase:
    """One optimizer and the loss that drives it.

    :param name: the phase name ``loss()`` receives (``"d"``, ``"g"``, ``"d_reg"`` ...); it also names the phase's
        optimizer in checkpoints and its losses in the logs (``d/loss``).
    :param modules: attribute names of the sub-modules whose parameters this phase optimizes (``("D",)``).
    :param lr: Adam learning rate, multiplied at each step by :meth:`GANVariant.lr_factor`.
    :param betas: Adam betas ``(beta1, beta2)``; GAN papers mostly use ``(0.5, 0.999)``, the default.
    :param weight_decay: Adam weight decay.
    :param every: run this phase only at steps whose index (0-based, counted over the whole run) is a multiple of
        ``every``: ``1`` runs it every step, ``16`` every 16th step from the first (lazy regularization, e.g. an R1
        phase; scale its loss by ``every`` to keep the penalty's weight).
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

    :param name: the stage name (``"pretrain"``, ``"gan"``), shown in logs and passed to ``loss()`` as
        :attr:`StepState.stage`.
    :param phases: the phases of each step of this stage, in the order they run.
    :param steps: length of the stage in steps; ``None`` means "until the end of training" (last stage only).
    """

    name: str
    phases: tuple[Phase, ...]
    steps: int | None = None


@dataclass
class StepState:
    """Scratchpad shared by the phases of one step, so e.g. the generator's forward runs once per step and is
    reused by the discriminator's phase.

    :param step: the index of this step (0-based, counted over the whole run, across stages).
    :param stage: the name of the :class:`Stage` this step belongs to.
    :param cache: tensors a phase leaves for the later phases of the same step (``state.cache["fake"]``); a new,
        empty dict every step.
    """

    step: int
    stage: str
    cache: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainInfo:
    """What :meth:`GANVariant.on_train_end` learns about the finished run.

    :param dataset: the training dataset the run drew its batches from (the one :meth:`GANVariant.prepare_data` saw).
    :param data_spec: the data spec it was built from (``"mnist-anomaly:/data/mnist"``), e.g. to build the
        ``"val"`` split of the same data with :func:`ganzoo.train.data.build_dataset`.
    :param device: the device the networks are on.
    :param out: the run directory (``model.safetensors`` is written there right after ``on_train_end``).
    :param step: the number of training steps completed.
    :param seed: the run's seed (``TrainConfig.seed``).
    :param main: whether this process is the one that writes files and prints (rank 0; always ``True`` when not
        distributed). ``on_train_end`` runs on every process, so that all of them end with the same state.
    :param verbose: whether the run shows progress (``TrainConfig.progress``): report to stderr only then.
    """

    dataset: Any
    data_spec: str
    device: torch.device
    out: Path
    step: int
    seed: int = 0
    main: bool = True
    verbose: bool = True


class GANVariant(nn.Module):
    """Base class of every variant. Subclasses set the class attributes and implement the abstract methods.

    Class attributes:

    * ``name``: the family name, lowercase (``"dcgan"``).
    * ``task``: a :class:`Task`: the batch schema ``loss`` receives and the inference protocol
      (:mod:`ganzoo.tasks`) the variant implements.
    * ``Config``: a dataclass with paper defaults and one help text per field (usually a subclass of
      :class:`ganzoo.variant_config.GANConfig`).
    * ``description``: one line for ``ganzoo list`` and ``ganzoo info``; default: the first line of the class
      docstring.
    * ``tags``: named presets of config overrides, selected as ``family.tag``.
    * ``ema_modules``: sub-modules that get an exponential moving average (the generators).
    * ``channels_last``: whether channels_last memory format helps this variant's convolutions.
    * ``tiny``: config overrides giving a minutes-to-milliseconds version for tests and the conformance kit
      (small widths and images, one-step stages); the networks must keep their structure.
    * ``default_data_spec``: the data spec used when the user gives none (a built-in procedural dataset); a config
      field ``data`` overrides it, so tags can pick their dataset.
    * ``training_state``: ``state_dict`` key prefixes of state only training needs (CycleGAN's history pools):
      checkpoints keep it, exported model files leave it out, and loading a model file starts it afresh.
    * ``bench_sizes``: config overrides of the speed suite's sizes (``ganzoo bench``, ``benchmarks/``):
      ``"standard"`` (the paper's resolution and batch, the reference point of published timings) and ``"small"``
      (a size a CPU measures in seconds). A size left out means the defaults.
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
    bench_sizes: ClassVar[dict[str, dict[str, Any]]] = {}

    def __init__(self, config: Any = None):
        super().__init__()
        self.config = config if config is not None else self.Config()

    # ---- what subclasses implement -------------------------------------------------------------------------------
    def stages(self) -> Sequence[Stage]:
        """The training plan: the stages (:class:`Stage`) in the order they run, each with its phases
        (:class:`Phase`). Built from the config; the trainer and the conformance kit may call it more than once, so
        it must return the same plan every time.

        :returns: one or more stages; every stage but the last has a ``steps`` length.
        """
        raise NotImplementedError

    def loss(self, phase: str, batch: Batch, state: StepState) -> Losses:
        """The losses of ``phase``: a dict whose ``"loss"`` entry is minimized; other entries are detached
        diagnostics that the trainer logs as ``phase/key``."""
        raise NotImplementedError

    # Inference is not a method of this base class: each task has its protocol in ganzoo.tasks (generate, translate,
    # upscale, generate_from_captions, score), which the variant implements.

    # ---- hooks with defaults -------------------------------------------------------------------------------------
    @property
    def default_data(self) -> str:
        return getattr(self.config, "data", None) or self.default_data_spec

    @property
    def batch_size(self) -> int:
        """The paper's batch size, used when the trainer is given none."""
        return int(getattr(self.config, "batch_size", 64))

    def data_options(self) -> dict[str, Any]:
        """Task-specific extras handed to the dataset factory in ``DataRequest.options``: plain values (numbers,
        strings, lists), never an object the dataset is meant to change; what a variant learns from its data it
        learns in :meth:`prepare_data`."""
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
        """Images (``[-1, 1]``, ``B x C x H x W``) to put in a sample grid for ``inputs``. The default suits noise
        models: ``generate(**inputs)`` (:class:`ganzoo.tasks.NoiseGenerator`, ``inputs`` being its keywords)."""
        generate = getattr(self, "generate", None)
        if generate is None:
            raise NotImplementedError(f"{self.name} implements no generate(); it must define sample_images()")
        return generate(**inputs)

    def lr_factor(self, phase: Phase, step: int, total_steps: int) -> float:
        """Learning-rate multiplier at ``step``; a pure function of the step so that resume is exact."""
        return 1.0

    # ---- the training lifecycle, in the order the trainer calls it ------------------------------------------------
    def prepare_data(self, dataset: Any) -> None:
        """See the training data before the first step (a vocabulary from the training captions, class counts).

        The trainer calls it once per :meth:`~ganzoo.train.Trainer.fit`, on every process, after the networks are
        on their device, the optimizers exist and a checkpoint (``resume``) has been restored, and before the
        sample inputs are drawn and the first step runs. So it must not add or replace parameters, and a resumed
        or fine-tuned variant already holds what it learned before (keep it: ids and statistics must not change
        under a model). The dataset was built with :meth:`data_options`, which is called just before.

        :param dataset: the training dataset (``split="train"``), items in the task's batch schema.
        """

    def on_step_end(self, step: int, losses: Losses) -> None:
        """Called by the trainer after all phases of a step and the EMA update (e.g. to refresh a history pool,
        or to act on a collapsing loss).

        :param step: the number of steps completed (1 after the first step).
        :param losses: the step's detached losses as device tensors keyed ``phase/name`` (``"d/loss"``,
            ``"g/adv"``), the phases that ran at this step only. Reading one (``float(t)``) waits for the device:
            do it every few steps, not every step.
        """

    def on_train_end(self, info: TrainInfo) -> None:
        """Called once after the last step, before the model is exported, with the exported weights (the EMA
        generators) in place: calibrate here, and keep the result in :meth:`extra_metadata`, so that the exported
        ``model.safetensors`` carries it. Not called when training stops early (Ctrl-C, divergence).

        :param info: the run: its training dataset, data spec, device, directory, step and seed.
        """

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
