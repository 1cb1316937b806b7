"""The DCGAN variant: unconditional or class-conditional image generation."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor

from ganzoo import GANVariant, Phase, Stage, StepState, Task
from ganzoo.config import help, require
from ganzoo.errors import ConfigError
from ganzoo.export_onnx import InferenceGraph, InferenceNet
from ganzoo.losses import G_REAL, PAIRED, get_loss, gradient_penalty, r1_penalty, r2_penalty
from ganzoo.nn import init_weights, spectral_norm_all
from ganzoo.rejection import DRSOptions, RejectionSampling
from ganzoo.schedules import final_decay
from ganzoo.tasks import gaussian_noise
from ganzoo.utils.images import SampleGrid, class_rows
from ganzoo.variant_config import GANConfig

from .model import Discriminator, Generator, plan


@dataclass
class DCGANConfig(DRSOptions, GANConfig):
    loss_provides: ClassVar[frozenset[str]] = frozenset({G_REAL, PAIRED})

    image_size: int = help("image side in pixels (28, 32, 64, 128 ...)", 64)
    channels: int = help("image channels (3 colour, 1 grayscale)", 3)
    nz: int = help("size of the latent vector z", 100)
    ngf: int = help("generator width (channels of its last hidden layer)", 64)
    ndf: int = help("discriminator width (channels of its first layer)", 64)
    fc: int = help(
        "units of a fully connected hidden layer in G (before its first map) and in D (before its logit), as "
        "InfoGAN's MNIST networks (0: none, the DCGAN paper's all-convolutional networks)",
        0,
    )
    num_classes: int = help("0: unconditional; >0: class-conditional G and a projection discriminator", 0)
    spectral_norm: bool = help("spectral normalisation on every discriminator layer", False)
    pack: int = help("PacGAN packing degree: D judges this many samples at once (1 = off)", 1)
    r1_gamma: float = help("R1 penalty weight gamma on real data (0 = off), applied lazily", 0.0)
    r2_gamma: float = help("R2 penalty weight gamma on generated data (0 = off), applied lazily", 0.0)
    r1_every: int = help("apply R1 and R2 every N steps (lazy regularization, scaled by N)", 16)
    gp_weight: float = help("WGAN-GP gradient penalty weight (0 = off; 10 in the paper)", 0.0)
    batch_size: int = help("batch size (128 in the paper, 64 in pytorch/examples)", 64)
    data: str = help("default data spec when none is given", "shapes")
    lr_decay: float = help(
        "final fraction of the run over which both learning rates decay linearly to 0 (0: constant rates)", 0.0
    )

    def validate(self) -> None:
        super().validate()
        try:
            plan(self.image_size)
        except ValueError as e:
            raise ConfigError(f"image_size: {e}") from None
        require(
            self,
            at_least_1=("channels", "nz", "ngf", "ndf", "pack", "r1_every", "batch_size"),
            non_negative=("fc", "num_classes", "r1_gamma", "r2_gamma", "gp_weight"),
            fraction=("lr_decay",),
        )
        if self.num_classes and self.pack > 1:
            raise ConfigError("pack > 1 and num_classes > 0 cannot be combined (a pack mixes classes)")
        if self.batch_size % self.pack:
            raise ConfigError(f"batch_size {self.batch_size} must be divisible by pack {self.pack}")


class DCGAN(RejectionSampling, GANVariant):
    """DCGAN (Radford et al. 2015): all-convolutional G and D with batch norm."""

    name = "dcgan"
    task = Task.UNCONDITIONAL
    Config = DCGANConfig
    tags = {
        # Issue #13's MNIST recipe: InfoGAN's fully connected layers (narrowed to 256 units) and rates (D 2e-4, G 1e-3)
        # at batch 128 for 6,000 steps, both rates decaying linearly to 0 over the last 30 %; the FC layers took the FID
        # from 21 to 12.2, the decay on to 11.5 (docs/benchmarks.md, "MNIST recipe").
        "mnist": {
            "image_size": 28,
            "channels": 1,
            "data": "mnist",
            "fc": 256,
            "batch_size": 128,
            "lr_g": 1e-3,
            "lr_d": 2e-4,
            "lr_decay": 0.3,
            "default_steps": 6000,
        },
        "shapes32": {"image_size": 32},
        # `make demo`: small batches at a high rate learn fastest in its two minutes (docs/benchmarks.md, the ablation).
        "demo": {
            "image_size": 32,
            "ngf": 32,
            "ndf": 32,
            "batch_size": 16,
            "lr_g": 1e-3,
            "lr_d": 1e-3,
            "default_steps": 3000,
        },
        "cond": {"num_classes": 6, "spectral_norm": True, "loss": "hinge"},
        "pac2": {"pack": 2},
        # PROTOCOLS.md section 2 at the CPU budget: the paper's DCGAN at 32x32, trained by name for its own length.
        "stacked": {"image_size": 32, "channels": 3, "data": "stacked-mnist", "default_steps": 10_000},
    }
    tag_descriptions = {
        "mnist": "28x28 grayscale on MNIST (--data mnist:DIR): InfoGAN-style FC layers (fc=256), batch 128 at Adam "
        "D 2e-4 / G 1e-3 decaying to 0 over the last 30 %, 6,000 steps, 6-12 minutes on two CPU cores",
        "shapes32": "32x32 images",
        "demo": "32x32, ngf = ndf = 32, batch 16 at Adam 1e-3, 3,000 steps: the `make demo` model, about a minute on "
        "a 2-core CPU",
        "cond": "class-conditional (6 classes): projection discriminator, spectral norm, hinge loss",
        "pac2": "PacGAN2: the discriminator judges packs of 2 samples (against mode collapse)",
        "stacked": "Stacked MNIST (1,000 modes) at 32x32, 10,000 steps (--data stacked-mnist:MNIST_DIR)",
    }
    ema_modules = ("G",)
    bench_sizes = {"standard": {"image_size": 64, "batch_size": 64}, "small": {"image_size": 32, "batch_size": 16}}
    tiny = {"image_size": 32, "ngf": 8, "ndf": 8, "nz": 16, "batch_size": 4}

    def __init__(self, config: DCGANConfig | None = None):
        super().__init__(config)
        c = self.config
        self.adv = get_loss(c.loss)
        self.G = init_weights(Generator(c.nz, c.ngf, c.channels, c.image_size, c.num_classes, c.fc))
        self.D = init_weights(Discriminator(c.ndf, c.channels, c.image_size, c.num_classes, c.pack, c.fc))
        if c.spectral_norm:
            spectral_norm_all(self.D)
        self.add_rejection_critic((c.channels, c.image_size, c.image_size))

    def stages(self) -> list[Stage]:
        c = self.config
        betas = (c.beta1, c.beta2)
        phases = [Phase("d", ("D",), c.lr_d, betas), Phase("g", ("G",), c.lr_g, betas)]
        if c.r2_gamma > 0:
            phases.insert(1, Phase("d_r2", ("D",), c.lr_d, betas, every=c.r1_every))
        if c.r1_gamma > 0:
            phases.insert(1, Phase("d_r1", ("D",), c.lr_d, betas, every=c.r1_every))
        return [Stage("gan", tuple(phases))]

    def lr_factor(self, phase: Phase, step: int, total_steps: int) -> float:
        """Constant, then a linear decay to 0 over the final ``lr_decay`` of the run."""
        return final_decay(step, total_steps, self.config.lr_decay)

    def _labels(self, batch: dict[str, Any]) -> Tensor | None:
        if not self.config.num_classes:
            return None
        y = batch["label"]
        if (y < 0).any() or (y >= self.config.num_classes).any():
            raise ConfigError(
                f"conditional DCGAN needs labels in 0..{self.config.num_classes - 1}; the data has others"
            )
        return y

    def _train_noise(self, n: int) -> Tensor:
        # Training draws on the device from the global generator, which checkpoints record for exact resume.
        return torch.randn(n, self.config.nz, 1, 1, device=self.device)

    def loss(self, phase: str, batch: dict[str, Any], state: StepState) -> dict[str, Tensor]:
        real = batch["image"]
        y = state.cache.get("y") if "y" in state.cache else self._labels(batch)
        state.cache["y"] = y
        if phase == "d":
            fake = self.G(self._train_noise(real.shape[0]), y)
            state.cache["fake"] = fake  # reused by G's phase: one generator forward per step
            real_logits = self.D(real, y)
            fake_logits = self.D(fake.detach(), y)
            loss = self.adv.d(real=real_logits, fake=fake_logits)
            out = {"real": real_logits.detach().float().mean(), "fake": fake_logits.detach().float().mean()}
            if self.config.gp_weight > 0:
                gp = gradient_penalty(lambda x: self.D(x, y), real, fake)
                loss = loss + self.config.gp_weight * gp
                out["gp"] = gp.detach()
            return {"loss": loss, **out}
        if phase == "d_r1":
            x = real.detach().requires_grad_(True)
            penalty = r1_penalty(self.D(x, y), x)
            return {"loss": penalty * (self.config.r1_gamma / 2 * self.config.r1_every), "r1": penalty.detach()}
        if phase == "d_r2":
            fake = state.cache.get("fake")
            if fake is None:
                with torch.no_grad():
                    fake = self.G(self._train_noise(real.shape[0]), y)
            x = fake.detach().requires_grad_(True)
            penalty = r2_penalty(self.D(x, y), x)
            return {"loss": penalty * (self.config.r2_gamma / 2 * self.config.r1_every), "r2": penalty.detach()}
        if phase == "g":
            fake = state.cache.pop("fake", None)
            if fake is None:
                fake = self.G(self._train_noise(real.shape[0]), y)
            real_logits = self.adv.real_logits_for_g(lambda: self.D(real, y))
            return {"loss": self.adv.g(real=real_logits, fake=self.D(fake, y))}
        raise ValueError(f"unknown phase {phase!r}")

    @property
    def num_classes(self) -> int:
        """Classes the generator is conditioned on (0: unconditional)."""
        return int(self.config.num_classes)

    def prior(self, n: int, *, seed: int | None = None, truncation: float | None = None) -> Tensor:
        """``(n, nz, 1, 1)`` standard normal latents on the CPU, truncated to ``[-truncation, truncation]`` when
        given (:func:`ganzoo.tasks.gaussian_noise`); ``noise`` (:class:`ganzoo.rejection.RejectionSampling`) returns
        them, filtered by discriminator rejection once a ``sampler=drs`` model is calibrated. See
        :class:`ganzoo.tasks.LatentGenerator`."""
        return gaussian_noise((n, self.config.nz, 1, 1), seed=seed, truncation=truncation)

    @torch.no_grad()
    def generate(
        self,
        n: int | None = None,
        *,
        z: Tensor | None = None,
        seed: int | None = None,
        labels: Tensor | None = None,
    ) -> Tensor:
        """Images in [-1, 1] from noise ``z`` (or ``n`` fresh draws of :meth:`noise`, 64 by default, reproducible
        with ``seed``); ``labels`` for the conditional model (default: classes in turn). See
        :class:`ganzoo.tasks.ClassConditionalGenerator`."""
        if z is None:
            z = self.noise(n or 64, seed=seed)
        z = z.to(self.device)
        if self.config.num_classes and labels is None:
            labels = torch.arange(z.shape[0]) % self.config.num_classes
        if labels is not None:
            labels = labels.to(self.device)
        return self.G(z, labels)

    def inference_graphs(self) -> list[InferenceGraph]:
        """ONNX export: ``z (B, nz, 1, 1)`` (and ``labels (B,)`` int64 when class-conditional) -> ``image (B, C, H,
        W)`` in [-1, 1]; a calibrated ``drs`` model adds ``z`` -> ``p (B,)``, the probability of keeping each
        latent."""
        c = self.config
        z = torch.randn(2, c.nz, 1, 1, generator=torch.Generator().manual_seed(0))
        axes = {"z": {0: "batch"}, "image": {0: "batch"}}
        noise = f"z: (B, {c.nz}, 1, 1) standard normal noise"
        image = f"image: (B, {c.channels}, {c.image_size}, {c.image_size}) in [-1, 1]"
        if not self.num_classes:
            net = InferenceNet(lambda nets, z: nets.G(z), G=self.G)
            graph = InferenceGraph("generator", net, (z,), ("z",), ("image",), axes, description=f"{noise} -> {image}")
            return [graph, *self.acceptance_graphs(z)]
        labels = torch.arange(2) % self.num_classes
        net = InferenceNet(lambda nets, z, labels: nets.G(z, labels), G=self.G)
        return [
            InferenceGraph(
                "generator",
                net,
                (z, labels),
                ("z", "labels"),
                ("image",),
                {**axes, "labels": {0: "batch"}},
                description=f"{noise}, labels: (B,) int64 classes 0..{self.num_classes - 1} -> {image}",
                metadata={"num_classes": str(self.num_classes)},
            )
        ]

    def sample_inputs(self, n: int, generator: torch.Generator, batch: dict[str, Any] | None = None) -> dict[str, Any]:
        z = torch.randn(n, self.config.nz, 1, 1, generator=generator)
        out: dict[str, Any] = {"z": z}
        if self.config.num_classes:
            # One row per class: about n / num_classes samples of each.
            per_row = math.ceil(n / min(n, self.config.num_classes))
            out["labels"] = torch.arange(n) // per_row
        return out

    def sample_images(self, inputs: dict[str, Any]) -> SampleGrid:
        """The samples of ``inputs``; a conditional model's grid has one row per class, labelled."""
        images = self.generate(z=inputs["z"], labels=inputs.get("labels"))
        labels = inputs.get("labels")
        if labels is None:
            return SampleGrid(images)
        return class_rows(images, labels)
