"""The contract between a GAN variant and the trainer.

A variant owns its networks and says *what* to compute: its stages, the phases of each stage and the loss of each
phase. The trainer owns *how*: device, precision, backward, optimizer steps, gradient toggling, EMA, schedules,
checkpoints, logging. Variants never call ``.backward()``, ``optimizer.step()`` or ``.item()``.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import Tensor, nn

from .config import apply_overrides, to_dict
from .errors import ConfigError

if TYPE_CHECKING:
    from .export_onnx import InferenceGraph
    from .utils.images import SampleGrid

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

    ``TrainConfig.steps`` (``--steps``) is the length of the whole run, all stages together. Every stage but the
    last gets ``steps`` when that is set (an explicit length, usually a config field the user sets), else
    ``fraction`` of ``--steps`` (rounded to the nearest step); the last stage runs to the end of training and gets
    what the stages before it leave. A run whose settings leave a stage with 0 steps is refused before training
    (:func:`resolve_stages`), so a generator that trains only in a later stage always trains. The resolved lengths
    are a pure function of the variant's config and ``--steps``, which keeps resume exact; resuming a run with a
    ``--steps`` that moves a stage boundary is refused.

    :param name: the stage name (``"pretrain"``, ``"gan"``), shown in logs and passed to ``loss()`` as
        :attr:`StepState.stage`.
    :param phases: the phases of each step of this stage, in the order they run.
    :param steps: an explicit length in steps, which wins over ``fraction``; ``None``: by ``fraction``. Leave it
        ``None`` on the last stage.
    :param fraction: the fraction of ``--steps`` the stage gets when ``steps`` is not set, in ``(0, 1)``; every stage
        but the last needs ``steps`` or ``fraction``, and the fractions of a plan must leave the last stage a
        share (sum below 1). Leave it ``None`` on the last stage.
    :param setting: the config field that sets ``steps`` explicitly (``"pretrain_steps"``), named in messages
        that tell the user how to change or keep the stage's length.
    """

    name: str
    phases: tuple[Phase, ...]
    steps: int | None = None
    fraction: float | None = None
    setting: str = ""

    def __post_init__(self) -> None:
        if self.steps is not None and self.steps < 0:
            raise ValueError(f"stage {self.name!r}: steps must be >= 0 or None, got {self.steps}")
        if self.fraction is not None and not 0 < self.fraction < 1:
            raise ValueError(f"stage {self.name!r}: fraction must be in (0, 1) or None, got {self.fraction}")


def resolve_stages(stages: Sequence[Stage], total_steps: int, variant: str = "the variant") -> list[Stage]:
    """The stages with the length each gets in a run of ``total_steps`` steps (see :class:`Stage`): explicit
    ``steps`` win, else ``fraction`` of ``total_steps`` rounded to the nearest step, cut to what is left; the last
    stage gets the rest. :meth:`GANVariant.stage_plan` calls it with the variant's own stages; the trainer, the
    commands and the conformance kit all resolve through it.

    :param stages: the stages in the order they run (:meth:`GANVariant.stages`).
    :param total_steps: the length of the run, all stages together (``TrainConfig.steps``).
    :param variant: the variant's name, for messages.
    :returns: copies of ``stages`` whose ``steps`` are all set and sum to ``total_steps``.
    :raises ConfigError: when a stage gets 0 steps, in one line listing every stage's steps and the settings that
        change them.
    :raises ValueError: for a plan that cannot be resolved whatever the run's length (no stages, a stage before the
        last with neither ``steps`` nor ``fraction``, a last stage with either, fractions summing to 1 or more).
    """
    if not stages:
        raise ValueError(f"{variant} declares no training stages")
    *head, last = stages
    if last.steps is not None or last.fraction is not None:
        raise ValueError(
            f"the last stage {last.name!r} of {variant} runs to the end of training: leave its steps and fraction unset"
        )
    for st in head:
        if st.steps is None and st.fraction is None:
            raise ValueError(f"stage {st.name!r} of {variant} is not the last: give it steps or a fraction")
    if sum(st.fraction or 0.0 for st in head if st.steps is None) >= 1:
        raise ValueError(f"the stage fractions of {variant} leave nothing to its last stage {last.name!r}")
    resolved: list[Stage] = []
    left = int(total_steps)
    for st in head:
        # Round half up, not to even: lengths must not jump between neighbouring --steps values.
        want = st.steps if st.steps is not None else math.floor(float(st.fraction or 0.0) * total_steps + 0.5)
        n = max(0, min(int(want), left))
        resolved.append(dataclasses.replace(st, steps=n))
        left -= n
    resolved.append(dataclasses.replace(last, steps=left))
    empty = [st.name for st in resolved if st.steps == 0]
    if empty:
        settings = [st.setting for st in head if st.setting]
        hint = "give more --steps" + (f" or set {' / '.join(settings)}" if settings else "")
        which = ", ".join(repr(n) for n in empty)
        raise ConfigError(
            f"--steps {total_steps} leaves stage{'s' if len(empty) > 1 else ''} {which} of {variant} with 0 steps "
            f"({format_stages(resolved)}); {hint}"
        )
    return resolved


def format_stages(stages: Sequence[Stage]) -> str:
    """``"pretrain: 4167, gan: 833"``: the stages of a resolved plan (:func:`resolve_stages`) and their steps."""
    return ", ".join(f"{st.name}: {st.steps}" for st in stages)


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
    * ``tag_descriptions``: one line per tag saying what it is for (``{"mnist": "28x28 grayscale on MNIST"}``),
      shown by ``ganzoo list`` and ``ganzoo info``; every tag needs one (the conformance kit checks).
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
    tag_descriptions: ClassVar[dict[str, str]] = {}
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

        :returns: one or more stages; every stage but the last has an explicit ``steps`` length or a ``fraction``
            of the run, the last has neither (it runs to the end).
        """
        raise NotImplementedError

    def stage_plan(self, total_steps: int) -> list[Stage]:
        """The stages with the steps each gets in a run of ``total_steps`` steps (:func:`resolve_stages`): what the
        trainer runs, and what a schedule that depends on a stage boundary (:meth:`lr_factor`) reads.

        :param total_steps: the length of the run, all stages together (``TrainConfig.steps``).
        :returns: the stages of :meth:`stages`, every ``steps`` set, summing to ``total_steps``.
        :raises ConfigError: when a stage gets 0 steps.
        """
        return resolve_stages(self.stages(), total_steps, self.name or type(self).__name__)

    def loss(self, phase: str, batch: Batch, state: StepState) -> Losses:
        """The losses of ``phase``: a dict whose ``"loss"`` entry is minimized; other entries are detached
        diagnostics that the trainer logs as ``phase/key``."""
        raise NotImplementedError

    # Inference is not a method of this base class: each task has its protocol in ganzoo.tasks (generate, translate,
    # upscale, generate_from_captions, score), which the variant implements.

    # ---- hooks with defaults -------------------------------------------------------------------------------------
    @property
    def default_data(self) -> str:
        """The data spec training and evaluation use when the user gives none: the config field ``data`` when the
        config has one (so a tag can pick its dataset, as ``dcgan.mnist`` does), else :attr:`default_data_spec`."""
        return getattr(self.config, "data", None) or self.default_data_spec

    @property
    def batch_size(self) -> int:
        """The batch size the trainer uses when given none (``--batch-size``): the config field ``batch_size``
        (declare it with the paper's value), else 64."""
        return int(getattr(self.config, "batch_size", 64))

    @property
    def default_steps(self) -> int | None:
        """The run length ``ganzoo train`` uses when given no ``--steps`` (nor ``train: steps:`` in a config file):
        the config field ``default_steps`` (every :class:`~ganzoo.variant_config.GANConfig` has one) when it is
        positive, so a tag's recipe carries its length, as ``vanilla.ring8`` does; else ``None``:
        :class:`~ganzoo.train.TrainConfig`'s default."""
        n = int(getattr(self.config, "default_steps", 0) or 0)
        return n if n > 0 else None

    @property
    def reduced_precision(self) -> bool:
        """Whether precision ``auto`` may train this variant under bf16/fp16 autocast: the config field
        ``reduced_precision`` (every :class:`~ganzoo.variant_config.GANConfig` has one, default ``True``), so a tag's
        recipe or a config class's default can ask for fp32. ``False`` keeps ``auto`` at fp32: for data that needs
        fp32 resolution (2D points within 0.01 of a mode, where bf16 resolves 0.008 near 1), networks too small for
        bf16 to pay, or a recipe that bf16 rounding hurts. An explicit ``--precision`` always wins."""
        return bool(getattr(self.config, "reduced_precision", True))

    def data_options(self) -> dict[str, Any]:
        """Task-specific extras handed to the dataset factory in ``DataRequest.options``: plain values (numbers,
        strings, lists), never an object the dataset is meant to change; what a variant learns from its data it
        learns in :meth:`prepare_data`."""
        return {}

    @property
    def image_size(self) -> int:
        """The side of the images the variant trains on, handed to datasets in ``DataRequest.image_size``: the
        config field ``image_size``, else 64."""
        return int(getattr(self.config, "image_size", 64))

    @property
    def channels(self) -> int:
        """Image channels (3 colour, 1 grayscale), handed to datasets in ``DataRequest.channels``: the config
        field ``channels``, else 3."""
        return int(getattr(self.config, "channels", 3))

    def sample_inputs(self, n: int, generator: torch.Generator, batch: Batch | None = None) -> dict[str, Any]:
        """Fixed inputs for the periodic sample grids (noise for generators, a held batch for translators)."""
        raise NotImplementedError

    def sample_images(self, inputs: dict[str, Any]) -> SampleGrid:
        """The sample grid for ``inputs``: the images (``[-1, 1]``, ``B x C x H x W``) with their layout and
        labels, a :class:`ganzoo.utils.images.SampleGrid`. The trainer writes it (``samples/step-N.png``) with
        :meth:`~ganzoo.utils.images.SampleGrid.save`. Label what a reader needs to read the picture: the columns of
        an input | output | target layout (:meth:`~ganzoo.utils.images.SampleGrid.of_columns`), a caption under
        each image (text-to-image), a label per row (a class per row: :func:`~ganzoo.utils.images.class_rows`).
        The default suits unconditional noise models: the images of ``generate(**inputs)``
        (:class:`ganzoo.tasks.NoiseGenerator`, ``inputs`` being its keywords), unlabelled.

        :param inputs: what :meth:`sample_inputs` returned.
        :returns: the grid.
        """
        from .utils.images import SampleGrid

        generate = getattr(self, "generate", None)
        if generate is None:
            raise NotImplementedError(f"{self.name} implements no generate(); it must define sample_images()")
        return SampleGrid(generate(**inputs))

    def inference_graphs(self) -> list[InferenceGraph]:
        """The networks a trained model runs at inference, for ONNX export (``ganzoo export --format onnx``,
        :func:`ganzoo.export_onnx.export_onnx`): one :class:`~ganzoo.export_onnx.InferenceGraph` per file, each a
        module whose ``forward`` is the pure tensor computation of the task's protocol (noise and labels to images,
        images to images, tokens to images, images to scores), with example inputs, names and a dynamic batch axis.
        Build them from the current weights; the exporter copies the modules, so the variant is not changed.

        :returns: the graphs, with distinct names.
        :raises ConfigError: by default: the variant has no ONNX export.
        """
        raise ConfigError(f"{self.name or type(self).__name__} has no ONNX export (it defines no inference_graphs)")

    def lr_factor(self, phase: Phase, step: int, total_steps: int) -> float:
        """Learning-rate multiplier at ``step``; a pure function of the step so that resume is exact. A schedule
        tied to a stage reads the stage's start from :meth:`stage_plan` (``total_steps``), never from a config
        length that may be unset.

        :param phase: the phase about to step.
        :param step: the index of this step (0-based, counted over the whole run).
        :param total_steps: the length of the run, all stages together (``TrainConfig.steps``).
        :returns: the factor the phase's ``lr`` is multiplied by at this step.
        """
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
