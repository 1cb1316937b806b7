"""The Pix2Pix variant (Isola et al. 2017): paired image-to-image translation with a conditional PatchGAN."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ganzoo import GANVariant, Phase, Stage, StepState, Task
from ganzoo.config import help
from ganzoo.errors import ConfigError, UnknownNameError
from ganzoo.losses import get_loss, l1, loss_names

from .model import (
    DISCRIMINATORS,
    GENERATORS_HELP,
    NORMS,
    as_pm1,
    build_discriminator,
    build_generator,
    generator_stride,
    run_padded,
)

INITS = ("normal", "xavier", "kaiming", "orthogonal")


def linear_decay(step: int, total: int, start: int = -1, length: int = 0) -> float:
    """The reference's ``linear`` policy (n_epochs at the full rate, then n_epochs_decay linearly towards 0) in steps:
    1 until ``start`` (-1: half of ``total``), then down over ``length`` steps (0: until ``total``). Fix both in the
    config when a run may be resumed with a different ``--steps``: the defaults follow the total."""
    start = start if start >= 0 else total // 2
    length = length if length > 0 else max(total - start, 1)
    return max(0.0, 1.0 - max(0, step + 1 - start) / (length + 1))


def check_common(c: Any, what: str) -> None:
    """Validation shared by Pix2Pix and CycleGAN configs."""
    try:
        stride = generator_stride(c.netG)
    except ValueError as e:
        raise ConfigError(f"netG: {e}") from None
    if c.netD not in DISCRIMINATORS:
        raise UnknownNameError("discriminator (netD)", c.netD, DISCRIMINATORS)
    if c.norm not in NORMS:
        raise UnknownNameError("norm", c.norm, NORMS)
    if c.init_type not in INITS:
        raise UnknownNameError("init_type", c.init_type, INITS)
    if c.loss not in loss_names():
        raise UnknownNameError("loss", c.loss, loss_names())
    if c.image_size < 16 or c.image_size % stride:
        raise ConfigError(f"{what}: image_size {c.image_size} must be a multiple of {stride} for netG={c.netG}")
    if c.load_size and c.load_size < c.image_size:
        raise ConfigError(f"load_size {c.load_size} must be 0 or >= image_size {c.image_size}")
    for name in ("channels", "ngf", "ndf", "n_layers_D", "batch_size"):
        if getattr(c, name) < 1:
            raise ConfigError(f"{name} must be >= 1, got {getattr(c, name)}")
    if c.channels not in (1, 3):
        raise ConfigError(f"channels must be 1 or 3, got {c.channels}")
    if c.lr <= 0:
        raise ConfigError(f"lr must be > 0, got {c.lr}")
    if c.decay_start < -1 or c.decay_steps < 0:
        raise ConfigError(f"decay_start must be >= -1 and decay_steps >= 0, got {c.decay_start}, {c.decay_steps}")


def jitter_options(c: Any) -> dict[str, Any]:
    # The reference resizes 256 -> 286 before cropping back to 256; keep that ratio at other sizes.
    load = c.load_size or round(c.image_size * 286 / 256)
    return {"load_size": load if c.jitter else c.image_size, "crop": c.jitter, "flip": c.flip}


def side_by_side(*images: Tensor) -> Tensor:
    """One picture per item, the given batches next to each other (input | output | target)."""
    return torch.cat([x.float().clamp(-1, 1) for x in images], dim=-1)


@dataclass
class TranslationConfig:
    """The fields Pix2Pix and CycleGAN share (networks of the reference implementation, Adam, linear decay, jitter);
    each variant's config adds its losses and overrides defaults where the papers differ."""

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
    loss: str = help("adversarial loss: standard (the paper's BCE), lsgan, hinge ... or a plugin's", "standard")
    lr: float = help("Adam learning rate of G and D", 2e-4)
    beta1: float = help("Adam beta1", 0.5)
    beta2: float = help("Adam beta2", 0.999)
    batch_size: int = help("batch size (1 in the paper)", 1)
    decay_start: int = help("step where the linear lr decay begins; -1 = half of the training steps", -1)
    decay_steps: int = help("steps of the linear decay to 0; 0 = until the end of training", 0)
    jitter: bool = help("random jitter: resize to load_size, random crop back to image_size (train split)", True)
    load_size: int = help("side before the random crop; 0 = image_size * 286/256 (286 for 256)", 0)
    flip: bool = help("random horizontal mirroring (train split)", True)
    data: str = help("default data spec when none is given", "shapes-pairs")


@dataclass
class Pix2PixConfig(TranslationConfig):
    lambda_gan: float = help("weight of the adversarial term; 0 trains the generator with L1 alone (no D)", 1.0)
    lambda_l1: float = help("weight of the L1 term", 100.0)
    direction: str = help("a2b or b2a: which half of aligned A|B images is the input", "a2b")

    def validate(self) -> None:
        check_common(self, "pix2pix")
        if self.direction not in ("a2b", "b2a"):
            raise ConfigError(f"direction {self.direction!r} is not valid; use a2b or b2a")
        if self.lambda_gan < 0 or self.lambda_l1 < 0:
            raise ConfigError("lambda_gan and lambda_l1 must be >= 0")


class Pix2Pix(GANVariant):
    """Pix2Pix (Isola et al. 2017): U-Net generator, conditional PatchGAN, adversarial + 100 L1."""

    name = "pix2pix"
    task = Task.PAIRED
    Config = Pix2PixConfig
    description = "Pix2Pix (Isola et al. 2017): paired translation, U-Net + conditional PatchGAN, cGAN + L1"
    tags = {
        "unet128": {"image_size": 128, "netG": "unet_128"},
        "shapes": {"image_size": 64, "netG": "unet_64", "ngf": 32, "ndf": 32, "batch_size": 4},
        "l1only": {"lambda_gan": 0.0},
        "shapes_l1": {"image_size": 64, "netG": "unet_64", "ngf": 32, "ndf": 32, "batch_size": 4, "lambda_gan": 0.0},
    }
    ema_modules = ("G",)
    channels_last = True
    default_data_spec = "shapes-pairs"
    # A fixed decay schedule so that the kit's "N steps, then resume to 2N" sees the same rates as 2N straight.
    tiny = {
        "image_size": 32,
        "netG": "unet_32",
        "ngf": 4,
        "ndf": 4,
        "batch_size": 2,
        "decay_start": 1,
        "decay_steps": 8,
    }

    def __init__(self, config: Pix2PixConfig | None = None):
        super().__init__(config)
        c = self.config
        self.adv = get_loss(c.loss)
        self.stride = generator_stride(c.netG)
        self.G = build_generator(c.netG, c.channels, c.channels, c.ngf, c.norm, c.dropout, c.init_type, c.init_gain)
        # Conditional D: it sees the input and the (real or generated) output stacked along channels.
        self.D = build_discriminator(c.netD, 2 * c.channels, c.ndf, c.n_layers_D, c.norm, c.init_type, c.init_gain)

    @property
    def batch_size(self) -> int:
        return self.config.batch_size

    def data_options(self) -> dict[str, Any]:
        return {**jitter_options(self.config), "direction": self.config.direction}

    def stages(self) -> list[Stage]:
        c = self.config
        betas = (c.beta1, c.beta2)
        g = Phase("g", ("G",), c.lr, betas)
        if c.lambda_gan == 0:
            return [Stage("train", (g,))]
        return [Stage("train", (Phase("d", ("D",), c.lr, betas), g))]

    def lr_factor(self, phase: Phase, step: int, total_steps: int) -> float:
        return linear_decay(step, total_steps, self.config.decay_start, self.config.decay_steps)

    def loss(self, phase: str, batch: dict[str, Any], state: StepState) -> dict[str, Tensor]:
        a, b = batch["a"], batch["b"]
        if phase == "d":
            fake = self.G(a)
            state.cache["fake"] = fake  # G's phase reuses it: one generator forward (and one dropout draw) per step
            fake_logits = self.D(torch.cat([a, fake.detach()], 1))
            real_logits = self.D(torch.cat([a, b], 1))
            # Halved as in the reference, slowing D relative to G.
            loss = 0.5 * (self.adv.d_fake(fake_logits) + self.adv.d_real(real_logits))
            return {
                "loss": loss,
                "real": real_logits.detach().float().mean(),
                "fake": fake_logits.detach().float().mean(),
            }
        if phase == "g":
            fake = state.cache.pop("fake", None)
            if fake is None:
                fake = self.G(a)
            rec = l1(fake, b)
            loss = self.config.lambda_l1 * rec
            out = {"l1": rec.detach()}
            if self.config.lambda_gan > 0:
                gan = self.adv.g(self.D(torch.cat([a, fake], 1)))
                loss = loss + self.config.lambda_gan * gan
                out["gan"] = gan.detach()
            return {"loss": loss, **out}
        raise ValueError(f"unknown phase {phase!r}")

    @torch.no_grad()
    def generate(self, a: Tensor | None = None, **inputs: Any) -> Tensor:
        """Translate ``a`` (``B x C x H x W`` or ``C x H x W``, ``[-1, 1]`` floats or uint8) into ``[-1, 1]`` images
        of the same size; any size works (padded to the generator's stride and cropped back)."""
        if a is None:
            raise ConfigError("pix2pix.generate needs input images: generate(a=tensor)")
        if inputs.get("b") is not None:
            raise ConfigError("pix2pix translates one way only (a -> b); train with direction=b2a for the other")
        x = as_pm1(a)
        single = x.dim() == 3
        x = x[None] if single else x
        if x.shape[1] != self.config.channels:
            raise ConfigError(f"pix2pix expects {self.config.channels}-channel images, got {x.shape[1]} channels")
        out = run_padded(self.G, x.to(self.device), self.stride)
        return out[0] if single else out

    def sample_inputs(self, n: int, generator: torch.Generator, batch: dict[str, Any] | None = None) -> dict[str, Any]:
        if batch is None:
            raise ConfigError("pix2pix sample grids need a batch of the data")
        return {"a": batch["a"][:n], "b": batch["b"][:n]}

    def sample_images(self, inputs: dict[str, Any]) -> Tensor:
        """input | output | target, one row per item."""
        return side_by_side(inputs["a"], self.generate(a=inputs["a"]), inputs["b"])
