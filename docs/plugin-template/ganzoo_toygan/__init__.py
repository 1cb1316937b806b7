"""toygan: a small convolutional GAN for 32x32 images, as a template for ganzoo plugins."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from ganzoo import GANVariant, Phase, Stage, Task, hookimpl
from ganzoo.config import help
from ganzoo.losses import G_REAL, PAIRED, get_loss
from ganzoo.variant_config import GANConfig


@dataclass
class ToyConfig(GANConfig):
    # What loss() below gives an adversarial loss: D's real logits in G's phase, real and fake logits of one shape.
    loss_provides: ClassVar[frozenset[str]] = frozenset({G_REAL, PAIRED})

    image_size: int = help("image side (fixed at 32 by the architecture)", 32)
    channels: int = help("image channels", 3)
    nz: int = help("latent size", 64)
    width: int = help("channels of the widest layer", 64)
    loss: str = help("adversarial loss (any registered name; see docs/losses.md)", "hinge")
    batch_size: int = help("batch size", 64)


class ToyGAN(GANVariant):
    """A small DCGAN-like model with hinge loss: the ganzoo plugin template."""

    name = "toygan"
    task = Task.UNCONDITIONAL
    Config = ToyConfig
    tiny = {"width": 8, "nz": 8, "batch_size": 4}
    # A tag is a preset selected as toygan.wide; each one has its own line in `ganzoo list`.
    tags = {"wide": {"width": 128}}
    tag_descriptions = {"wide": "twice the width: 128 channels in the widest layer"}

    def __init__(self, config: ToyConfig | None = None):
        super().__init__(config)
        c, w = self.config, self.config.width
        self.adv = get_loss(c.loss)
        self.G = nn.Sequential(
            nn.ConvTranspose2d(c.nz, w, 8, 1, 0), nn.BatchNorm2d(w), nn.ReLU(),  # 8x8
            nn.ConvTranspose2d(w, w // 2, 4, 2, 1), nn.BatchNorm2d(w // 2), nn.ReLU(),  # 16x16
            nn.ConvTranspose2d(w // 2, c.channels, 4, 2, 1), nn.Tanh(),  # 32x32
        )
        self.D = nn.Sequential(
            nn.Conv2d(c.channels, w // 2, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(w // 2, w, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(w, 1, 8, 1, 0), nn.Flatten(0),
        )

    def stages(self):
        c = self.config
        betas = (c.beta1, c.beta2)
        return [Stage("gan", (Phase("d", ("D",), c.lr_d, betas), Phase("g", ("G",), c.lr_g, betas)))]

    def loss(self, phase, batch, state):
        real = batch["image"]
        if phase == "d":
            fake = self.G(torch.randn(real.shape[0], self.config.nz, 1, 1, device=real.device))
            state.cache["fake"] = fake  # the G phase reuses this forward
            return {"loss": self.adv.d(real=self.D(real), fake=self.D(fake.detach()))}
        # real= is None unless the loss declares that it needs D's real logits here (relativistic losses).
        real_logits = self.adv.real_logits_for_g(lambda: self.D(real))
        return {"loss": self.adv.g(real=real_logits, fake=self.D(state.cache.pop("fake")))}

    @torch.no_grad()
    def generate(self, n=None, *, z=None, seed=None):  # the protocol of the task: ganzoo.tasks.NoiseGenerator
        if z is None:
            gen = torch.Generator().manual_seed(seed) if seed is not None else None
            z = torch.randn(n or 64, self.config.nz, 1, 1, generator=gen)
        return self.G(z.to(self.device))

    def sample_inputs(self, n, generator, batch=None):
        return {"z": torch.randn(n, self.config.nz, 1, 1, generator=generator)}


@hookimpl
def ganzoo_register_variants(register):
    register(ToyGAN)
