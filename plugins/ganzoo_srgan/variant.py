"""The SRGAN variant: SRResNet pretraining with MSE, then adversarial training with a content loss."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor

from ganzoo import GANVariant, Phase, Stage, StepState, Task
from ganzoo.config import help, require
from ganzoo.errors import ConfigError, UnknownNameError
from ganzoo.export_onnx import InferenceGraph, InferenceNet
from ganzoo.losses import G_REAL, PAIRED, get_loss
from ganzoo.schedules import cosine_decay
from ganzoo.utils.images import SampleGrid
from ganzoo.variant_config import GANConfig

from .model import (
    CONTENT_LOSSES,
    ContentLoss,
    Discriminator,
    SRResNet,
    bicubic_upscale,
    get_content_loss,
    upscale_steps,
    upscale_tiled,
)

# The paper's 10^6 SRResNet steps then 2x10^5 GAN steps (10^5 at lr 1e-4, 10^5 at 1e-5): pretraining gets 5/6.
PRETRAIN_FRACTION = 5 / 6

# Schedules of the SRResNet stage: the paper's constant rate, or a half cosine to 0 over the stage.
PRETRAIN_LR_DECAYS = ("none", "cosine")

# Pixel losses of the SRResNet stage: the paper's MSE, or L1 (EDSR's choice).
PIXEL_LOSSES = ("mse", "l1")


@dataclass
class SRGANConfig(GANConfig):
    loss_provides: ClassVar[frozenset[str]] = frozenset({G_REAL, PAIRED})

    scale: int = help("upscaling factor: 2, 4 or 8 (one sub-pixel x2 stage each)", 4)
    image_size: int = help("HR training crop side in pixels (a multiple of scale)", 96)
    channels: int = help("image channels (3 colour, 1 grayscale)", 3)
    n_feats: int = help("generator width (feature maps of the residual blocks)", 64)
    n_blocks: int = help("generator residual blocks", 16)
    ndf: int = help("discriminator width (first conv; doubles to 8x)", 64)
    d_dense: int = help("units of the discriminator's dense layer", 1024)
    batch_norm: bool = help(
        "batch norm in the generator (residual blocks and the conv after them, the paper); false drops it, as EDSR "
        "does for PSNR-driven SR",
        True,
    )
    augment: bool = help(
        "train on crops in random orientations (flips and quarter turns, 8 in all), from sr-folder or sr-pairs", False
    )
    pixel_loss: str = help("pixel loss of the SRResNet stage: mse (the paper) or l1", "mse")
    gan: bool = help("train the adversarial stage after SRResNet pretraining; false = SRResNet only", True)
    pretrain_steps: int | None = help(
        "steps of the SRResNet (MSE) stage before the GAN stage; default: pretrain_fraction of --steps",
        None,
    )
    pretrain_fraction: float = help(
        "share of --steps the SRResNet stage gets when pretrain_steps is unset, in (0, 1); 5/6 is the paper's ratio "
        "(10^6 pretraining steps, then 2x10^5 GAN steps)",
        PRETRAIN_FRACTION,
    )
    pretrain_lr_decay: str = help(
        "learning-rate schedule of the SRResNet stage: none (lr_g throughout, the paper) or cosine (a half cosine "
        "from lr_g to 0 over the stage's steps; the GAN stage keeps its own schedule). The curve is a function of the "
        "step and the stage's length, so a resume continues it exactly: the stage's end is fixed by pretrain_steps "
        "or --steps (a resume that moves it is refused); with gan=false the stage is the whole run, and resuming "
        "with a longer --steps stretches the curve to the new end (the rate rises to the stretched curve's value, "
        "a warm restart, with a note)",
        "none",
    )
    gan_lr_decay_at: int | None = help(
        "GAN-stage step at which the learning rate drops to 1/10; default: half the GAN stage (10^5 of the "
        "paper's 2x10^5)",
        None,
    )
    content_loss: str = help("content loss of the GAN stage: vgg54 (falls back to mse without weights) or mse", "vgg54")
    vgg_weights: str = help(
        "path of torchvision's VGG19 weights (else $GANZOO_VGG19_WEIGHTS, then torch hub's cache)", ""
    )
    adv_weight: float = help("weight of the adversarial term in the generator loss", 1e-3)
    lr_g: float = help("Adam learning rate of G (both stages)", 1e-4)
    lr_d: float = help("Adam learning rate of D", 1e-4)
    beta1: float = help("Adam beta1", 0.9)
    batch_size: int = help("batch size", 16)
    data: str = help("default data spec when none is given", "shapes-sr")

    def validate(self) -> None:
        super().validate()
        try:
            upscale_steps(self.scale)
        except ValueError as e:
            raise ConfigError(f"scale: {e}") from None
        if self.image_size < self.scale or self.image_size % self.scale:
            raise ConfigError(f"image_size {self.image_size} must be a positive multiple of scale {self.scale}")
        # Batch norm needs two values per channel: over the batch and the LR crop (G), the 1/16 map (D).
        lr_side, d_side = self.image_size // self.scale, -(-self.image_size // 16)
        if self.batch_size * lr_side**2 < 2 or (self.gan and self.batch_size * d_side**2 < 2):
            raise ConfigError(
                f"batch_size {self.batch_size} with image_size {self.image_size} leaves batch norm one value per "
                f"channel; use batch_size >= 2 or image_size >= {max(32, 2 * self.scale)}"
            )
        if self.channels not in (1, 3):
            raise ConfigError(f"channels must be 1 or 3, got {self.channels}")
        require(
            self,
            at_least_1=("n_feats", "ndf", "d_dense", "batch_size"),
            non_negative=("n_blocks", "adv_weight"),
            stage_share=("pretrain_fraction",),
        )
        if self.gan_lr_decay_at is not None and self.gan_lr_decay_at < 0:
            raise ConfigError(f"gan_lr_decay_at must be >= 0 (or unset: mid GAN stage), got {self.gan_lr_decay_at}")
        if self.pretrain_steps is not None and self.pretrain_steps < 1:
            raise ConfigError(
                f"pretrain_steps must be >= 1 (or unset: pretrain_fraction of --steps), got {self.pretrain_steps}"
            )
        if self.pretrain_lr_decay not in PRETRAIN_LR_DECAYS:
            raise ConfigError(
                f"pretrain_lr_decay must be one of {', '.join(PRETRAIN_LR_DECAYS)}, got {self.pretrain_lr_decay!r}"
            )
        if self.pixel_loss not in PIXEL_LOSSES:
            raise UnknownNameError("pixel loss", self.pixel_loss, PIXEL_LOSSES)
        if self.content_loss not in CONTENT_LOSSES:
            raise UnknownNameError("content loss", self.content_loss, CONTENT_LOSSES)


class SRGAN(GANVariant):
    """SRGAN (Ledig et al. 2017): SRResNet super-resolution (x4, x2, x8), MSE-pretrained, then GAN with VGG54."""

    name = "srgan"
    task = Task.SUPER_RESOLUTION
    Config = SRGANConfig
    tags = {
        "srresnet": {"gan": False},
        "x2": {"scale": 2},
        "x8": {"scale": 8},
        "small": {
            # The paper's width at half its depth: 64 features beat 32 at every step measured (docs/variants/srgan.md,
            # "The CPU recipe"), and crops in random orientations keep the 100 training images from capping the PSNR.
            "n_feats": 64,
            "n_blocks": 8,
            "augment": True,
            # EDSR's choices: L1 without batch norm led at every checkpoint of the tag's run (docs/variants/srgan.md)
            "pixel_loss": "l1",
            "batch_norm": False,
            "lr_g": 5e-4,
            "lr_d": 5e-4,
            "pretrain_lr_decay": "cosine",
            # A GAN step (the paper's discriminator) costs about 2.9x an SRResNet step of this generator on the CPU: at
            # the paper's 5/6 the GAN stage would take over a third of the run's time, time the SRResNet stage needs to
            # converge. 100 GAN steps of 5,920 leave the SRResNet stage 5,820 (docs/variants/srgan.md); 0.9831 is the
            # share that rounds to exactly those 5,820.
            "pretrain_fraction": 0.9831,
            "image_size": 96,
            "batch_size": 16,
            # Pixel MSE in the GAN stage (SRGAN-MSE) whether or not VGG19 weights are on the machine: the recipe's
            # time and results must not depend on a cached file, and VGG54 makes a CPU GAN step about 1.9x slower.
            "content_loss": "mse",
            "default_steps": 5920,
        },
    }
    tag_descriptions = {
        "srresnet": "SRResNet only: the MSE-trained generator, no adversarial stage",
        "x2": "x2 upscaling (one sub-pixel stage)",
        "x8": "x8 upscaling (three sub-pixel stages)",
        "small": "the CPU recipe, for --data sr-folder:DIR (../shared/data/sr/Urban100_train): SRResNet with 64 "
        "features and 8 blocks without batch norm, trained with L1 on crops in random orientations at lr 5e-4, "
        "cosine-decayed over its stage, then a GAN stage with pixel-MSE content loss (SRGAN-MSE; --set "
        "content_loss=vgg54 for the paper's); 5,920 steps (5,820 SRResNet + 100 GAN) unless --steps is given",
    }
    ema_modules = ("G",)
    default_data_spec = "shapes-sr"
    bench_sizes = {"standard": {}, "small": {"image_size": 48, "batch_size": 4}}
    tiny = {
        "image_size": 16,
        "n_feats": 8,
        "n_blocks": 2,
        "ndf": 4,
        "d_dense": 16,
        "batch_size": 2,
        "pretrain_steps": 1,
        # Fixed, not half the GAN stage: the conformance kit resumes a run of N steps to 2N, which must not move it.
        "gan_lr_decay_at": 1,
        "content_loss": "mse",
    }

    def __init__(self, config: SRGANConfig | None = None):
        super().__init__(config)
        c = self.config
        self.adv = get_loss(c.loss)
        self.G = SRResNet(c.channels, c.n_feats, c.n_blocks, c.scale, batch_norm=c.batch_norm)
        self.D = Discriminator(c.channels, c.ndf, c.d_dense)
        self._content: ContentLoss | None = None  # built on first use: VGG is loaded only for the GAN stage

    @property
    def content(self) -> ContentLoss:
        if self._content is None:
            self._content = get_content_loss(self.config.content_loss, self.config.vgg_weights or None)
        return self._content

    def data_options(self) -> dict[str, Any]:
        return {"scale": self.config.scale, "crop": self.config.image_size, "augment": self.config.augment}

    def stages(self) -> list[Stage]:
        c = self.config
        betas = (c.beta1, c.beta2)
        if not c.gan:
            return [Stage("pretrain", (Phase("g_mse", ("G",), c.lr_g, betas),))]
        return [
            Stage(
                "pretrain",
                (Phase("g_mse", ("G",), c.lr_g, betas),),
                steps=c.pretrain_steps,
                fraction=c.pretrain_fraction,
                setting="pretrain_steps",
            ),
            Stage("gan", (Phase("d", ("D",), c.lr_d, betas), Phase("g", ("G",), c.lr_g, betas))),
        ]

    def lr_factor(self, phase: Phase, step: int, total_steps: int) -> float:
        """The SRResNet stage: 1, or with ``pretrain_lr_decay`` ``cosine`` a half cosine from 1 to 0 over the stage's
        steps in the resolved plan. The GAN stage: x0.1 from ``gan_lr_decay_at`` steps into it (default: its
        middle), counted from where the resolved plan starts the stage."""
        c = self.config
        if phase.name == "g_mse":
            if c.pretrain_lr_decay == "cosine":
                return cosine_decay(step, int(self.stage_plan(total_steps)[0].steps or 1))
            return 1.0
        if phase.name not in ("d", "g"):
            return 1.0
        pretrain, gan = self.stage_plan(total_steps)
        decay_at = c.gan_lr_decay_at if c.gan_lr_decay_at is not None else int(gan.steps or 0) // 2
        return 0.1 if step >= int(pretrain.steps or 0) + decay_at else 1.0

    def loss(self, phase: str, batch: dict[str, Any], state: StepState) -> dict[str, Tensor]:
        lr, hr = batch["lr"], batch["hr"]
        if phase == "g_mse":
            # The phase keeps its name whatever pixel_loss is (checkpoints and logs name phases).
            err = self.G(lr).float() - hr.float()
            mse = err.square().mean()
            loss = err.abs().mean() if self.config.pixel_loss == "l1" else mse
            # PSNR on the [-1, 1] scale (peak-to-peak 2): a readable progress figure, all channels, no shave.
            return {"loss": loss, "psnr": (10 * torch.log10(4 / mse.detach().clamp_min(1e-12)))}
        if phase == "d":
            sr = self.G(lr)
            state.cache["sr"] = sr  # reused by G's phase: one generator forward per step
            real, fake = self.D(hr), self.D(sr.detach())
            loss = self.adv.d(real=real, fake=fake)
            return {"loss": loss, "real": real.detach().float().mean(), "fake": fake.detach().float().mean()}
        if phase == "g":
            sr = state.cache.pop("sr", None)
            if sr is None:
                sr = self.G(lr)
            content = self.content(sr, hr)
            adv = self.adv.g(real=self.adv.real_logits_for_g(lambda: self.D(hr)), fake=self.D(sr))
            return {"loss": content + self.config.adv_weight * adv, "content": content.detach(), "adv": adv.detach()}
        raise ValueError(f"unknown phase {phase!r}")

    @property
    def scale(self) -> int:
        """The upscaling factor (:class:`ganzoo.tasks.Upscaler`)."""
        return int(self.config.scale)

    @torch.no_grad()
    def upscale(self, lr: Tensor, tile: int = 0, overlap: int | None = None) -> Tensor:
        """Super-resolve ``lr`` (``B x C x h x w`` or ``C x h x w`` floats in [-1, 1]) to ``scale`` times its size,
        in [-1, 1]. ``tile`` > 0 processes LR tiles of that side with ``overlap`` pixels of context each, so memory
        stays bounded on large images; the default overlap is the generator's receptive radius, which makes the
        tiled output equal the untiled one (in eval mode) and so free of seams."""
        if overlap is None:
            overlap = self.G.receptive_radius()
        squeeze = lr.dim() == 3
        x = (lr[None] if squeeze else lr).to(self.device, torch.float32)
        if x.shape[1] != self.config.channels:
            raise ConfigError(f"this model takes {self.config.channels}-channel images, got {x.shape[1]} channels")
        out = upscale_tiled(self.G, x, self.config.scale, tile, overlap).clamp(-1, 1)
        return out[0] if squeeze else out

    def inference_graphs(self) -> list[InferenceGraph]:
        """ONNX export: ``lr (B, C, h, w)`` in [-1, 1] -> ``sr (B, C, scale * h, scale * w)`` in [-1, 1], with
        dynamic batch, height and width (whole images: no tiling)."""
        c = self.config
        gen = torch.Generator().manual_seed(0)
        side = max(c.image_size // c.scale, 4)
        lr = torch.rand(2, c.channels, side, side, generator=gen) * 2 - 1
        other = torch.rand(3, c.channels, side + 3, side + 5, generator=gen) * 2 - 1
        return [
            InferenceGraph(
                "upscaler",
                InferenceNet(lambda nets, lr: nets.G(lr).clamp(-1, 1), G=self.G),
                (lr,),
                ("lr",),
                ("sr",),
                {"lr": {0: "batch", 2: "height", 3: "width"}, "sr": {0: "batch", 2: "out_height", 3: "out_width"}},
                check_inputs=(other,),
                description=f"lr: (B, {c.channels}, h, w) in [-1, 1] -> sr: (B, {c.channels}, {c.scale}h, {c.scale}w) "
                "in [-1, 1]",
                metadata={"scale": str(c.scale)},
            )
        ]

    def sample_inputs(self, n: int, generator: torch.Generator, batch: dict[str, Any] | None = None) -> dict[str, Any]:
        if batch is None:
            raise ConfigError("srgan sample grids need a data batch")
        n = min(n, 12, batch["lr"].shape[0])
        return {"lr": batch["lr"][:n], "hr": batch["hr"][:n]}

    def sample_images(self, inputs: dict[str, Any]) -> SampleGrid:
        """Triplets per input, the columns captioned: bicubic upsampling, the model's output, the HR ground truth."""
        lr, hr = inputs["lr"].to(self.device), inputs["hr"].to(self.device)
        sr = self.upscale(lr)
        bic = bicubic_upscale(lr, self.config.scale)
        return SampleGrid.of_columns([("bicubic", bic), ("output", sr.float()), ("HR", hr.float())])
