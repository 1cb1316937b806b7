"""The Pix2Pix variant (Isola et al. 2017): paired image-to-image translation with a conditional PatchGAN."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor

from ganzoo import GANVariant, Phase, Stage, StepState, Task
from ganzoo.config import help, require
from ganzoo.data.translation import jitter_options
from ganzoo.errors import ConfigError
from ganzoo.export_onnx import InferenceGraph, image_to_image_graph
from ganzoo.losses import G_REAL, PAIRED, get_loss, l1
from ganzoo.nn import build_discriminator, build_generator, generator_stride, run_padded
from ganzoo.schedules import linear_decay
from ganzoo.utils.images import SampleGrid, as_pm1
from ganzoo.variant_config import TranslationConfig


@dataclass
class Pix2PixConfig(TranslationConfig):
    loss_provides: ClassVar[frozenset[str]] = frozenset({G_REAL, PAIRED})

    loss: str = help("adversarial loss: standard (the paper's BCE), lsgan, hinge, rpgan ... or a plugin's", "standard")
    lambda_gan: float = help("weight of the adversarial term; 0 trains the generator with L1 alone (no D)", 1.0)
    lambda_l1: float = help("weight of the L1 term", 100.0)
    direction: str = help("a2b or b2a: which half of aligned A|B images is the input", "a2b")

    def validate(self) -> None:
        super().validate()
        if self.direction not in ("a2b", "b2a"):
            raise ConfigError(f"direction {self.direction!r} is not valid; use a2b or b2a")
        require(self, non_negative=("lambda_gan", "lambda_l1"))


# The CPU recipe on shapes-pairs (docs/benchmarks.md, "Recipes"): 6,000 steps of batch 4, the linear decay over the
# second half as in the paper's schedule.
SHAPES_RECIPE = {"image_size": 64, "netG": "unet_64", "ngf": 32, "ndf": 32, "batch_size": 4, "default_steps": 6000}


class Pix2Pix(GANVariant):
    """Pix2Pix (Isola et al. 2017): U-Net generator, conditional PatchGAN, adversarial + 100 L1."""

    name = "pix2pix"
    task = Task.PAIRED
    Config = Pix2PixConfig
    description = "Pix2Pix (Isola et al. 2017): paired translation, U-Net + conditional PatchGAN, cGAN + L1"
    tags = {
        "unet128": {"image_size": 128, "netG": "unet_128"},
        "shapes": SHAPES_RECIPE,
        "l1only": {"lambda_gan": 0.0},
        "shapes_l1": {**SHAPES_RECIPE, "lambda_gan": 0.0},
    }
    tag_descriptions = {
        "unet128": "unet_128 generator at 128x128",
        "shapes": "64x64, unet_64, ngf = ndf = 32, batch 4, 6,000 steps (lr decay over the second half): the CPU "
        "recipe for shapes-pairs",
        "l1only": "the defaults without the adversarial loss (lambda_gan = 0): L1 regression only",
        "shapes_l1": "the shapes recipe without the adversarial loss (lambda_gan = 0): its L1-only baseline",
    }
    ema_modules = ("G",)
    channels_last = True
    default_data_spec = "shapes-pairs"
    # A fixed decay schedule so that the kit's "N steps, then resume to 2N" sees the same rates as 2N straight.
    bench_sizes = {"standard": {}, "small": {"netG": "unet_128", "image_size": 128}}
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
        g = Phase("g", ("G",), c.lr_g, betas)
        if c.lambda_gan == 0:
            return [Stage("train", (g,))]
        return [Stage("train", (Phase("d", ("D",), c.lr_d, betas), g))]

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
            loss = 0.5 * self.adv.d(real=real_logits, fake=fake_logits)
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
                real_logits = self.adv.real_logits_for_g(lambda: self.D(torch.cat([a, b], 1)))
                gan = self.adv.g(real=real_logits, fake=self.D(torch.cat([a, fake], 1)))
                loss = loss + self.config.lambda_gan * gan
                out["gan"] = gan.detach()
            return {"loss": loss, **out}
        raise ValueError(f"unknown phase {phase!r}")

    #: One-way: train with ``direction=b2a`` for the other way (:class:`ganzoo.tasks.Translator`).
    directions: tuple[str, ...] = ("a2b",)

    @torch.no_grad()
    def translate(self, images: Tensor, direction: str = "a2b") -> Tensor:
        """Translate ``images`` (``B x C x H x W`` or ``C x H x W``, ``[-1, 1]`` floats or uint8) into ``[-1, 1]``
        images of the same size; any size works (padded to the generator's stride and cropped back)."""
        if direction not in self.directions:
            raise ConfigError(
                f"pix2pix translates one way only, direction 'a2b' (got {direction!r}); train with direction=b2a "
                "for the other"
            )
        x = as_pm1(images)
        single = x.dim() == 3
        x = x[None] if single else x
        if x.shape[1] != self.config.channels:
            raise ConfigError(f"pix2pix expects {self.config.channels}-channel images, got {x.shape[1]} channels")
        out = run_padded(self.G, x.to(self.device), self.stride)
        return out[0] if single else out

    def inference_graphs(self) -> list[InferenceGraph]:
        """ONNX export: ``a (B, C, H, W)`` in [-1, 1] -> ``b``, the same size; ``H`` and ``W`` are dynamic, multiples
        of the generator's stride (the file's ``stride`` metadata; pad and crop around it for other sizes)."""
        c = self.config
        return [image_to_image_graph("a2b", self.G, "a", "b", c.channels, c.image_size, self.stride)]

    def sample_inputs(self, n: int, generator: torch.Generator, batch: dict[str, Any] | None = None) -> dict[str, Any]:
        if batch is None:
            raise ConfigError("pix2pix sample grids need a batch of the data")
        return {"a": batch["a"][:n], "b": batch["b"][:n]}

    def sample_images(self, inputs: dict[str, Any]) -> SampleGrid:
        """input | output | target for each item, the columns captioned."""
        a = inputs["a"]
        return SampleGrid.of_columns([("input", a), ("output", self.translate(a)), ("target", inputs["b"])])
