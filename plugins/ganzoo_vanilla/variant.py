"""The vanilla GAN variant: 28x28 images with the Keras MLPs, or 2D points with PacGAN's MLPs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor

from ganzoo import GANVariant, Phase, Stage, StepState, Task
from ganzoo.config import help, require
from ganzoo.errors import ConfigError
from ganzoo.export_onnx import InferenceGraph, InferenceNet
from ganzoo.losses import G_REAL, PAIRED, get_loss, r1_penalty
from ganzoo.rejection import DRSOptions, RejectionSampling
from ganzoo.schedules import final_decay
from ganzoo.tasks import gaussian_noise
from ganzoo.utils.images import SampleGrid, scatter_image
from ganzoo.variant_config import GANConfig

from .model import MLPDiscriminator, MLPGenerator

ARCHS = {
    # name: (G hidden, G layers, G batch norm, G tanh, D hidden, D layers, D maxout pieces)
    "keras": (128, 1, False, True, 128, 1, 1),
    "pacgan2d": (400, 4, True, False, 200, 3, 5),
}


@dataclass
class VanillaConfig(DRSOptions, GANConfig):
    loss_provides: ClassVar[frozenset[str]] = frozenset({G_REAL, PAIRED})

    arch: Literal["keras", "pacgan2d"] = help("keras: 28x28 image MLPs; pacgan2d: 2D-point MLPs of PacGAN", "keras")
    nz: int = help("latent size (100 for keras, 2 for pacgan2d)", 100)
    image_size: int = help("image side for the keras arch (0 for 2D points)", 28)
    channels: int = help("image channels for the keras arch", 1)
    pack: int = help("PacGAN packing degree: D judges this many samples at once (1 = off)", 1)
    batch_size: int = help("batch size", 64)
    data: str = help("default data spec when none is given", "shapes")
    lr_decay: float = help(
        "final fraction of the run over which both learning rates decay linearly to 0 (0: constant rates)", 0.0
    )
    r1: float = help("R1 penalty weight gamma on D's gradient at real points, added as gamma/2 * R1 (0: off)", 0.0)
    # 2D points: bf16 resolves 0.008 near the ring's radius 1 and 0.03 at the grid's corners, on the order of the
    # modes' deviations (0.01, 0.05). Both archs' MLPs are too small for bf16 to pay on a CPU (the speed table of
    # docs/benchmarks.md: keras 0.83x and 0.97x of fp32; docs/variants/vanilla.md for pacgan2d).
    reduced_precision: bool = help(
        "whether --precision auto may train under bf16/fp16 autocast; false (the default here: 2D points need fp32 "
        "resolution, and bf16 does not pay for these MLPs) keeps auto at fp32",
        False,
    )

    def validate(self) -> None:
        super().validate()
        require(self, at_least_1=("nz", "pack", "batch_size", "channels"), non_negative=("r1",), fraction=("lr_decay",))
        if self.arch == "keras" and self.image_size < 1:
            raise ConfigError("image_size must be >= 1 for the keras arch")
        if self.batch_size % self.pack:
            raise ConfigError(f"batch_size {self.batch_size} must be divisible by pack {self.pack}")


# PROTOCOLS.md section 1: PacGAN's 2D nets and batch 100. The recipe (docs/variants/vanilla.md, with its ablation)
# departs from PacGAN's constant Adam 1e-4 by RECIPE_2D's length and final linear decay, with the trainer's generator
# EMA (ema_decay 0.999) and fp32 (reduced_precision), and samples with discriminator rejection (5 seeds: the ring's
# high-quality share 92.8 % plain, 99.6 % with it).
_PACGAN_2D = {"arch": "pacgan2d", "nz": 2, "image_size": 0, "lr_g": 1e-4, "lr_d": 1e-4, "batch_size": 100}
RECIPE_2D = {"default_steps": 10_000, "lr_decay": 0.5, "sampler": "drs"}
# The grid: a 4x faster D sharpens its 25 modes, and R1 on D keeps them all (alone, the faster D dropped to 18 modes);
# 5 seeds: 24.8 modes, 70.9 % high quality, reverse KL 0.052, against 22.8 / 53.5 / 0.347 without (docs/benchmarks.md).
# Its D, smoothed by R1, does not resolve the tails around the modes even fine-tuned (84.0 % with rejection), so the
# rejection reads a Fourier-feature critic trained 2,000 steps at the end, with exact rejection (gamma 0).
GRID_2D = {"r1": 0.1, "lr_d": 4e-4, "drs_critic": "fourier", "drs_finetune": 2000, "drs_gamma": 0.0}


class VanillaGAN(RejectionSampling, GANVariant):
    """The original GAN (Goodfellow et al. 2014) with fully connected G and D."""

    name = "vanilla"
    task = Task.UNCONDITIONAL
    Config = VanillaConfig
    channels_last = False
    bench_sizes = {"standard": {"batch_size": 64}, "small": {"batch_size": 16}}
    tiny = {"nz": 16, "batch_size": 4}
    tags = {
        "mnist": {"data": "mnist"},
        "ring8": {**_PACGAN_2D, **RECIPE_2D, "data": "ring8"},
        "grid25": {**_PACGAN_2D, **RECIPE_2D, **GRID_2D, "data": "grid25"},
    }
    tag_descriptions = {
        "mnist": "the fully connected GAN on MNIST (--data mnist:DIR)",
        "ring8": "2D ring of 8 Gaussians: PacGAN 2D nets, batch 100, Adam 1e-4, 10,000 steps with decay, fp32, "
        "discriminator rejection sampling",
        "grid25": "2D grid of 25 Gaussians: the ring8 recipe with R1 0.1 on D and D at 4e-4; exact rejection by a "
        "Fourier-feature critic trained 2,000 steps at the end",
    }

    def __init__(self, config: VanillaConfig | None = None):
        super().__init__(config)
        c = self.config
        gh, gl, gbn, gtanh, dh, dl, pieces = ARCHS[c.arch]
        self.points = c.arch == "pacgan2d"
        self.out_shape = (2,) if self.points else (c.channels, c.image_size, c.image_size)
        self.adv = get_loss(c.loss)
        self.G = MLPGenerator(c.nz, gh, gl, self.out_shape, gbn, gtanh)
        self.D = MLPDiscriminator(int(torch.tensor(self.out_shape).prod()), dh, dl, pieces, c.pack)
        self.add_rejection_critic(self.out_shape)

    @property
    def image_size(self) -> int:
        return 0 if self.points else self.config.image_size

    @property
    def channels(self) -> int:
        return 0 if self.points else self.config.channels

    def stages(self) -> list[Stage]:
        c = self.config
        betas = (c.beta1, c.beta2)
        return [Stage("gan", (Phase("d", ("D",), c.lr_d, betas), Phase("g", ("G",), c.lr_g, betas)))]

    def lr_factor(self, phase: Phase, step: int, total_steps: int) -> float:
        """Constant, then a linear decay to 0 over the final ``lr_decay`` of the run."""
        return final_decay(step, total_steps, self.config.lr_decay)

    def loss(self, phase: str, batch: dict[str, Any], state: StepState) -> dict[str, Tensor]:
        real = batch["image"]
        if real.shape[1:] != self.out_shape:
            raise ConfigError(
                f"vanilla ({self.config.arch}) expects data of shape {self.out_shape}, got {tuple(real.shape[1:])}"
            )
        if phase == "d":
            fake = self.G(torch.randn(real.shape[0], self.config.nz, device=real.device))
            state.cache["fake"] = fake  # reused by G's phase
            if self.config.r1 > 0:
                real = real.detach().requires_grad_(True)
            real_logits, fake_logits = self.D(real), self.D(fake.detach())
            loss = self.adv.d(real=real_logits, fake=fake_logits)
            out = {}
            if self.config.r1 > 0:
                out["r1"] = r1_penalty(real_logits, real)
                loss = loss + 0.5 * self.config.r1 * out["r1"]
            return {
                **out,
                "loss": loss,
                "real": real_logits.detach().float().mean(),
                "fake": fake_logits.detach().float().mean(),
            }
        if phase == "g":
            fake = state.cache.pop("fake", None)
            if fake is None:
                fake = self.G(torch.randn(real.shape[0], self.config.nz, device=real.device))
            real_logits = self.adv.real_logits_for_g(lambda: self.D(real))
            return {"loss": self.adv.g(real=real_logits, fake=self.D(fake))}
        raise ValueError(f"unknown phase {phase!r}")

    def prior(self, n: int, *, seed: int | None = None, truncation: float | None = None) -> Tensor:
        """``(n, nz)`` standard normal latents on the CPU, truncated to ``[-truncation, truncation]`` when given
        (:func:`ganzoo.tasks.gaussian_noise`); ``noise`` (:class:`ganzoo.rejection.RejectionSampling`) returns them,
        filtered by discriminator rejection once a ``sampler=drs`` model is calibrated. See
        :class:`ganzoo.tasks.LatentGenerator`."""
        return gaussian_noise((n, self.config.nz), seed=seed, truncation=truncation)

    @torch.no_grad()
    def generate(self, n: int | None = None, *, z: Tensor | None = None, seed: int | None = None) -> Tensor:
        """Samples (images in [-1, 1], or (N, 2) points) from ``z`` or ``n`` fresh draws of :meth:`noise` (64 by
        default), as :class:`ganzoo.tasks.NoiseGenerator` specifies."""
        if z is None:
            z = self.noise(n or 64, seed=seed)
        return self.G(z.to(self.device))

    def inference_graphs(self) -> list[InferenceGraph]:
        """ONNX export: ``z (B, nz)`` -> ``image (B, C, H, W)`` in [-1, 1], or ``points (B, 2)`` for 2D data; a
        calibrated ``drs`` model adds ``z (B, nz)`` -> ``p (B,)``, the probability of keeping each latent."""
        out = "points" if self.points else "image"
        z = torch.randn(2, self.config.nz, generator=torch.Generator().manual_seed(0))
        what = "(B, 2) points" if self.points else f"(B, {self.config.channels}, H, W) images in [-1, 1]"
        return [
            InferenceGraph(
                "generator",
                InferenceNet(lambda nets, z: nets.G(z), G=self.G),
                (z,),
                ("z",),
                (out,),
                {"z": {0: "batch"}, out: {0: "batch"}},
                description=f"z: (B, {self.config.nz}) standard normal noise -> {out}: {what}",
            ),
            *self.acceptance_graphs(z),
        ]

    def sample_inputs(self, n: int, generator: torch.Generator, batch: dict[str, Any] | None = None) -> dict[str, Any]:
        if self.points:  # a scatter needs many points; PROTOCOLS.md scores 2,500
            return {"z": torch.randn(2500, self.config.nz, generator=generator), "real": batch["image"][:512].cpu()}
        return {"z": torch.randn(n, self.config.nz, generator=generator)}

    def sample_images(self, inputs: dict[str, Any]) -> SampleGrid:
        """The samples; for 2D data one scatter picture of them (blue) over real points (red)."""
        out = self.generate(z=inputs["z"])
        if not self.points:
            return SampleGrid(out)
        real = inputs.get("real")
        limit = float(real.abs().max()) * 1.25 if real is not None else 5.0
        caption = f"{out.shape[0]} samples (blue)"
        if real is not None:
            caption += f", {real.shape[0]} real points (red)"
        return SampleGrid(scatter_image(out, limit, reference=real)[None], captions=[caption])
