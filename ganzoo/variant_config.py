"""Config base classes of the variants: the fields every GAN repeats, and those the image translators share.

A variant's ``Config`` dataclass inherits :class:`GANConfig` (or :class:`TranslationConfig`), redeclares a field to
change its paper default, adds its own fields and extends :meth:`GANConfig.validate` (calling ``super().validate()``).
The class variable :attr:`GANConfig.loss_provides` declares what the variant gives an adversarial loss (names from
:data:`ganzoo.losses.REQUIREMENTS`), so ``validate()`` refuses, by name, a loss the variant cannot train with.
"""

from __future__ import annotations

import dataclasses
import math
import threading
from dataclasses import dataclass
from typing import Any, ClassVar

from . import registry
from .config import help, require
from .errors import ConfigError, UnknownNameError
from .losses import check_loss
from .nn import DISCRIMINATORS, GENERATORS_HELP, INITS, NORMS, generator_stride


def _variant_of(config_cls: type) -> str:
    # For messages only: the registered variant whose Config this is.
    spec = _spec_of(config_cls)
    return spec.name if spec is not None else "this variant"


def _spec_of(config_cls: type) -> Any:
    for spec in registry.variants().values():
        if spec.cls.Config is config_cls:
            return spec
    return None


#: Upper bounds of the size fields a variant config may have, by field name; a config is checked on those it has.
#: Far above any paper's setting, they stop a typo (``ngf=640000``) before it becomes an allocation.
SIZE_LIMITS: dict[str, int] = {
    "image_size": 8192,
    "base_size": 4096,
    "load_size": 16384,
    "channels": 64,
    "batch_size": 65536,
    "nz": 65536,
    "c_dim": 65536,
    "ngf": 16384,
    "ndf": 16384,
    "n_feats": 16384,
    "d_dense": 65536,
    "nef": 16384,
    "emb_dim": 16384,
    "encoder_width": 4096,
    "n_blocks": 1024,
    "res_blocks": 1024,
    "n_layers_D": 16,
    "branches": 8,
    "vocab_size": 10_000_000,
    "max_words": 4096,
    "pool_size": 100_000,
    "pack": 1024,
    "num_classes": 100_000,
}

#: The most parameters a variant config may describe: 2^31, 8 GiB of float32 weights (32 GiB with Adam's state).
MAX_PARAMETERS = 2**31

#: The most numbers one batch of training images may hold (batch_size x channels x image_size^2): 2^31, 8 GiB.
MAX_BATCH_NUMBERS = 2**31

_building = threading.local()  # the parameter count builds the variant, whose construction must not count again


@dataclass
class GANConfig:
    """The adversarial loss and the Adam settings of G and D, with their checks."""

    #: What the variant provides to a loss (:data:`ganzoo.losses.REQUIREMENTS`); a loss requiring more is refused.
    loss_provides: ClassVar[frozenset[str]] = frozenset()

    loss: str = help("adversarial loss: standard, minimax, lsgan, hinge, wgan, rpgan, ragan, or a plugin's", "standard")
    lr_g: float = help("Adam learning rate of the generator(s)", 2e-4)
    lr_d: float = help("Adam learning rate of the discriminator(s)", 2e-4)
    beta1: float = help("Adam beta1", 0.5)
    beta2: float = help("Adam beta2", 0.999)
    default_steps: int = help("the recipe's run length when --steps is not given (0: the trainer's default)", 0)
    reduced_precision: bool = help(
        "whether --precision auto may train under bf16/fp16 autocast; false keeps auto at fp32 (an explicit "
        "--precision wins)",
        True,
    )

    def validate(self) -> None:
        """Every number finite, the size fields within :data:`SIZE_LIMITS`, learning rates positive, betas in
        [0, 1), the loss registered and usable by the variant.

        :raises ganzoo.ConfigError: a value out of range, or a loss needing what the variant does not provide.
        :raises ganzoo.UnknownNameError: an unregistered loss name.
        """
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(f"{f.name} must be a finite number, got {value}")
            limit = SIZE_LIMITS.get(f.name)
            if limit is not None and isinstance(value, int) and value > limit:
                raise ConfigError(f"{f.name} must be at most {limit:,}, got {value:,}")
        size = getattr(self, "image_size", 0) or 0
        numbers = getattr(self, "batch_size", 1) * getattr(self, "channels", 1) * size * size
        if numbers > MAX_BATCH_NUMBERS:
            raise ConfigError(
                f"a batch of batch_size {getattr(self, 'batch_size', 1)} x channels {getattr(self, 'channels', 1)} "
                f"x image_size {size}^2 is "
                f"{numbers:,} numbers, over the limit of {MAX_BATCH_NUMBERS:,}; lower batch_size or image_size"
            )
        if self.default_steps < 0:
            raise ConfigError(f"default_steps must be >= 0 (0: the trainer's default), got {self.default_steps}")
        for name in ("lr_g", "lr_d"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"{name} must be a finite number > 0, got {value}")
        for name in ("beta1", "beta2"):
            value = getattr(self, name)
            if not 0 <= value < 1:
                raise ConfigError(f"{name} must be in [0, 1), got {value}")
        check_loss(self.loss, self.loss_provides, _variant_of(type(self)))

    def check_limits(self) -> None:
        """Refuse a config whose networks would have more than :data:`MAX_PARAMETERS` parameters, naming the size
        fields set above their defaults. The variant is built on the meta device (no memory for weights), and only
        when a size field is above both 4 times its default and 256, so the defaults and presets cost nothing;
        :func:`ganzoo.config.apply_overrides` calls this after :meth:`validate`.

        :raises ganzoo.ConfigError: naming the parameter count, the limit and the enlarged fields.
        """
        import torch

        try:
            defaults = type(self)()
        except TypeError:  # a config with required fields has no defaults to compare with
            return
        grown = {}
        for f in dataclasses.fields(self):
            value, default = getattr(self, f.name), getattr(defaults, f.name)
            if f.name in SIZE_LIMITS and isinstance(value, int) and isinstance(default, int) and value > default:
                grown[f.name] = value
        # Sizes up to 4x their default (or 256) cannot reach the limit in any variant: no build for them.
        if all(v <= max(4 * getattr(defaults, k), 256) for k, v in grown.items()):
            return
        spec = _spec_of(type(self))
        if not grown or spec is None or getattr(_building, "active", False):
            return
        _building.active = True
        try:
            with torch.device("meta"):
                count = sum(p.numel() for p in spec.cls(self).parameters())
        except Exception:  # noqa: BLE001 - a variant that cannot be built on meta is built for real, unchecked
            return
        finally:
            _building.active = False
        if count > MAX_PARAMETERS:
            fields = ", ".join(f"{k}={v:,} (default {getattr(defaults, k):,})" for k, v in grown.items())
            raise ConfigError(
                f"{spec.name} with {fields} would have {count:,} parameters, over the limit of {MAX_PARAMETERS:,}; "
                f"lower {' or '.join(grown)}"
            )


@dataclass
class TranslationConfig(GANConfig):
    """The fields paired and unpaired image translators share (the networks of the pix2pix/CycleGAN reference
    implementation in :mod:`ganzoo.nn.translation`, Adam, a linear learning-rate decay, random jitter); each
    variant's config adds its losses and redeclares defaults where its paper differs."""

    image_size: int = help("training image side in pixels (a multiple of the generator's stride)", 256)
    channels: int = help("image channels of both sides (3 colour, 1 grayscale)", 3)
    netG: str = help(f"generator: {GENERATORS_HELP}", "unet_256")
    netD: str = help("discriminator: basic (70x70 PatchGAN), n_layers (PatchGAN of n_layers_D), pixel (1x1)", "basic")
    n_layers_D: int = help("stride-2 layers of the n_layers discriminator", 3)
    ngf: int = help("generator width (channels of its first layer)", 64)
    ndf: int = help("discriminator width (channels of its first layer)", 64)
    norm: str = help("normalisation: batch, instance or none", "batch")
    dropout: bool = help("dropout 0.5 in the U-Net decoder / ResNet blocks (the paper's only noise source)", True)
    init_type: str = help("weight init: normal, xavier, kaiming, orthogonal", "normal")
    init_gain: float = help("std of the normal init (gain of xavier/orthogonal)", 0.02)
    batch_size: int = help("batch size (1 in the paper)", 1)
    decay_start: int = help("step where the linear lr decay begins; -1 = half of the training steps", -1)
    decay_steps: int = help("steps of the linear decay to 0; 0 = until the end of training", 0)
    jitter: bool = help("random jitter: resize to load_size, random crop back to image_size (train split)", True)
    load_size: int = help("side before the random crop; 0 = image_size * 286/256 (286 for 256)", 0)
    flip: bool = help("random horizontal mirroring (train split)", True)
    data: str = help("default data spec when none is given", "shapes-pairs")

    @property
    def generator(self) -> str:
        """The generator architecture ``netG`` stands for (a config may resolve an alias such as ``auto``)."""
        return self.netG

    def validate(self) -> None:
        """The shared checks of :class:`GANConfig`, then the networks, sizes and schedule.

        :raises ganzoo.ConfigError: a value out of range.
        :raises ganzoo.UnknownNameError: an unknown network, norm, init or loss name.
        """
        super().validate()
        try:
            stride = generator_stride(self.generator)
        except ValueError as e:
            raise ConfigError(f"netG: {e}") from None
        if self.netD not in DISCRIMINATORS:
            raise UnknownNameError("discriminator (netD)", self.netD, DISCRIMINATORS)
        if self.norm not in NORMS:
            raise UnknownNameError("norm", self.norm, NORMS)
        if self.init_type not in INITS:
            raise UnknownNameError("init_type", self.init_type, INITS)
        if self.image_size < 16 or self.image_size % stride:
            raise ConfigError(
                f"image_size {self.image_size} must be >= 16 and a multiple of {stride} for netG={self.generator}"
            )
        if self.load_size and self.load_size < self.image_size:
            raise ConfigError(f"load_size {self.load_size} must be 0 or >= image_size {self.image_size}")
        require(self, at_least_1=("channels", "ngf", "ndf", "n_layers_D", "batch_size"))
        if self.n_layers_D != 3 and self.netD != "n_layers":
            # The reference implementation reads n_layers_D only for netD=n_layers; a depth set for another
            # discriminator would be dropped without a word.
            raise ConfigError(
                f"n_layers_D={self.n_layers_D} applies to netD=n_layers only, but netD={self.netD}; "
                "add --set netD=n_layers (basic is n_layers with 3 layers)"
            )
        if self.channels not in (1, 3):
            raise ConfigError(f"channels must be 1 or 3, got {self.channels}")
        # Each stride-2 layer of a PatchGAN halves the side and its two last 4x4 convolutions take 2 pixels off: a
        # side under 3 after the halvings leaves no patch to judge.
        halvings = {"basic": 3, "n_layers": self.n_layers_D}.get(self.netD, 0)
        if self.image_size >> halvings < 3:
            raise ConfigError(
                f"netD={self.netD} with {halvings} stride-2 layers needs image_size >= {3 << halvings}, got "
                f"{self.image_size}" + ("; lower n_layers_D" if self.netD == "n_layers" else "")
            )
        if not self.init_gain > 0:
            raise ConfigError(f"init_gain must be > 0 (the std of the normal init), got {self.init_gain}")
        if self.decay_start < -1 or self.decay_steps < 0:
            raise ConfigError(
                f"decay_start must be >= -1 and decay_steps >= 0, got {self.decay_start}, {self.decay_steps}"
            )
