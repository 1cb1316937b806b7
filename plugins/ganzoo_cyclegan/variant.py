"""The CycleGAN variant (Zhu et al. 2017): unpaired translation with two generators, two PatchGANs, cycle and
identity losses and a history pool of generated images per discriminator."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ganzoo import GANVariant, Phase, Stage, StepState, Task
from ganzoo.config import help, require
from ganzoo.data.translation import jitter_options
from ganzoo.errors import ConfigError
from ganzoo.export_onnx import InferenceGraph, image_to_image_graph
from ganzoo.losses import G_REAL, PAIRED, get_loss, l1
from ganzoo.nn import GENERATORS_HELP, build_discriminator, build_generator, generator_stride, run_padded
from ganzoo.schedules import linear_decay
from ganzoo.utils.images import SampleGrid, as_pm1
from ganzoo.variant_config import TranslationConfig


class HistoryPool(nn.Module):
    """Shrivastava et al. 2017's buffer of past generated images: once full, each query image is swapped, with
    probability 1/2, for a random stored one (which it replaces), so D also sees older generators' outputs.

    The pool lives in buffers (``images``: ``size x C x H x W``, allocated at the first query; ``count``: how many are
    filled) so checkpoints hold it, and its coin flips come from torch's global CPU generator, which the trainer saves:
    a resumed run draws exactly what the uninterrupted run would have.
    """

    def __init__(self, size: int):
        super().__init__()
        self.size = size
        self.register_buffer("images", torch.zeros(0))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))
        self._n = 0  # host copy of ``count``: reading the buffer back would stall an accelerator every step

    @torch.no_grad()
    def query(self, fakes: Tensor) -> Tensor:
        if self.size == 0:
            return fakes
        fakes = fakes.detach()
        shape = (self.size, *fakes.shape[1:])
        if tuple(self.images.shape) != shape:
            if self._n:
                raise ConfigError(f"history pool holds {tuple(self.images.shape[1:])} images, got {tuple(shape[1:])}")
            self.images = torch.zeros(shape, dtype=torch.float32, device=fakes.device)
        out = []
        for img in fakes:
            if self._n < self.size:
                self.images[self._n] = img
                self._n += 1
                out.append(img)
            elif float(torch.rand(())) > 0.5:
                j = int(torch.randint(self.size, ()))
                out.append(self.images[j].to(img.dtype).clone())
                self.images[j] = img
            else:
                out.append(img)
        self.count.fill_(self._n)
        return torch.stack(out)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, errors):
        # The stored pool may be empty (shape (0,)) or full, so take its shape as it is rather than insisting on ours;
        # a state without a pool (a model imported from the reference) starts with an empty one.
        for name in ("images", "count"):
            key = prefix + name
            if key in state_dict:
                current = getattr(self, name)
                setattr(self, name, state_dict[key].detach().clone().to(current.device, current.dtype))
        self._n = int(self.count)


@contextlib.contextmanager
def frozen(*modules: nn.Module) -> Iterator[None]:
    """Parameters of ``modules`` do not require grad inside the block, so a forward made there (D judging G's output
    in G's phase) builds no graph towards them and the backward computes no gradient the step would throw away."""
    params = [(p, p.requires_grad) for m in modules for p in m.parameters()]
    for p, _ in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in params:
            p.requires_grad_(flag)


@dataclass
class CycleGANConfig(TranslationConfig):
    loss_provides: ClassVar[frozenset[str]] = frozenset({G_REAL, PAIRED})

    image_size: int = help("training image side in pixels (a multiple of 4 for the ResNet generators)", 256)
    channels: int = help("image channels of both domains (3 colour, 1 grayscale)", 3)
    netG: str = help(
        f"generators: auto (resnet_9blocks at >= 256 px, resnet_6blocks below) or {GENERATORS_HELP}", "auto"
    )
    norm: str = help("normalisation: instance, batch or none", "instance")
    dropout: bool = help("dropout 0.5 inside the generators' residual blocks (off in the paper)", False)
    loss: str = help("adversarial loss: lsgan (the paper's), standard, hinge, rpgan ... or a plugin's", "lsgan")
    data: str = help("default data spec when none is given", "shapes-styles")
    lambda_a: float = help("weight of the cycle loss A -> B -> A", 10.0)
    lambda_b: float = help("weight of the cycle loss B -> A -> B", 10.0)
    lambda_identity: float = help("identity loss weight, relative to lambda_a / lambda_b (0 = off)", 0.5)
    pool_size: int = help("generated images kept per discriminator in the history pool (0 = no pool)", 50)

    @property
    def generator(self) -> str:
        if self.netG != "auto":
            return self.netG
        return "resnet_9blocks" if self.image_size >= 256 else "resnet_6blocks"

    def validate(self) -> None:
        super().validate()
        require(self, non_negative=("lambda_a", "lambda_b", "lambda_identity", "pool_size"))


#: ``cyclegan.shapes32``: the recipe of docs/benchmarks.md ("Where the recipes stand") for ``shapes-styles``. Both
#: rates at 4e-4, twice the paper's (9,000 steps: 24.9997 dB A->B over 3 seeds against 23.40 at 2e-4), for 12,000
#: steps, which took seeds 0 and 1 from 24.82 / 25.07 to 25.30 / 25.57 dB at one thread. fp32 under precision auto:
#: in bf16 at torch's default two threads seeds 0 / 1 ended at 22.97 / 23.12 dB (mean of 3 seeds 23.85), in fp32 at
#: 25.66 / 24.77 (mean 25.27), for 1.07-1.19x the time (docs/variants/cyclegan.md, "The recipe").
SHAPES32_RECIPE = {
    "image_size": 32,
    "netG": "resnet_6blocks",
    "ngf": 16,
    "ndf": 32,
    "batch_size": 4,
    "lr_g": 4e-4,
    "lr_d": 4e-4,
    "default_steps": 12000,
    "reduced_precision": False,
}


class CycleGAN(GANVariant):
    """CycleGAN (Zhu et al. 2017): G_A: A -> B and G_B: B -> A, D_A judges B, D_B judges A."""

    name = "cyclegan"
    task = Task.UNPAIRED
    Config = CycleGANConfig
    description = "CycleGAN (Zhu et al. 2017): unpaired translation, 2 ResNet G + 2 PatchGAN D, cycle + identity"
    tags = {
        "res128": {"image_size": 128},
        "shapes": {"image_size": 64, "netG": "resnet_6blocks", "ngf": 16, "ndf": 32},
        "shapes32": SHAPES32_RECIPE,
    }
    tag_descriptions = {
        "res128": "128x128 with resnet_6blocks, the paper's setting at that size",
        "shapes": "64x64, resnet_6blocks, ngf 16, ndf 32: sized for the shapes-styles data",
        "shapes32": "the CPU recipe for shapes-styles: 32x32, resnet_6blocks, ngf 16, ndf 32, batch 4, Adam 4e-4, "
        "12,000 steps (lr decay over the second half), fp32",
    }
    ema_modules = ("G_A", "G_B")
    training_state = ("pool_A.", "pool_B.")  # about 39 MB at 256 px: in checkpoints, not in exported models
    # channels_last: the convolutions run 7% faster; ganzoo.nn.InstanceNorm2d and batching with split (not slicing)
    # keep every tensor and gradient in that format, which torch's instance norm and slice gradients would not.
    channels_last = True
    default_data_spec = "shapes-styles"
    # PROTOCOLS.md's reference point for speed is resnet_9blocks at 128x128, batch 1.
    bench_sizes = {"standard": {"image_size": 128, "netG": "resnet_9blocks"}, "small": {"image_size": 64}}
    tiny = {
        "image_size": 32,
        "netG": "resnet_6blocks",
        "ngf": 4,
        "ndf": 4,
        "batch_size": 2,
        "pool_size": 3,
        "decay_start": 1,
        "decay_steps": 8,
    }

    def __init__(self, config: CycleGANConfig | None = None):
        super().__init__(config)
        c = self.config
        self.adv = get_loss(c.loss)
        self.stride = generator_stride(c.generator)

        def gen() -> nn.Module:
            return build_generator(
                c.generator, c.channels, c.channels, c.ngf, c.norm, c.dropout, c.init_type, c.init_gain
            )

        def disc() -> nn.Module:
            return build_discriminator(c.netD, c.channels, c.ndf, c.n_layers_D, c.norm, c.init_type, c.init_gain)

        self.G_A, self.G_B, self.D_A, self.D_B = gen(), gen(), disc(), disc()
        # Without batch statistics every image is computed on its own, so calls of one network on several inputs
        # can be batched into one (fewer, larger kernels; the same losses and gradients).
        self.per_sample = c.norm != "batch"
        self.pool_A = HistoryPool(c.pool_size)  # generated A images (G_B's), shown to D_B
        self.pool_B = HistoryPool(c.pool_size)  # generated B images (G_A's), shown to D_A

    @property
    def batch_size(self) -> int:
        return self.config.batch_size

    def data_options(self) -> dict[str, Any]:
        return jitter_options(self.config)

    def stages(self) -> list[Stage]:
        c = self.config
        betas = (c.beta1, c.beta2)
        # G first, then D on the cached fakes, as the reference's optimize_parameters does.
        return [Stage("train", (Phase("g", ("G_A", "G_B"), c.lr_g, betas), Phase("d", ("D_A", "D_B"), c.lr_d, betas)))]

    def lr_factor(self, phase: Phase, step: int, total_steps: int) -> float:
        return linear_decay(step, total_steps, self.config.decay_start, self.config.decay_steps)

    def loss(self, phase: str, batch: dict[str, Any], state: StepState) -> dict[str, Tensor]:
        c = self.config
        real_a, real_b = batch["a"], batch["b"]
        if phase == "g":
            identity = c.lambda_identity > 0
            if self.per_sample:
                # One call per generator and input set: the same per-image computation in fewer, larger kernels.
                # (split, not slicing: its backward concatenates, which keeps channels_last gradients)
                n = len(real_a)
                to_b = [real_b, real_a] if identity else [real_b]  # G_B: translate B, and leave A alone
                fake_a, *idt_b = self.G_B(torch.cat(to_b)).split(n)
                to_a = [real_a, fake_a, real_b] if identity else [real_a, fake_a]  # G_A: translate, cycle, identity
                fake_b, rec_b, *idt_a = self.G_A(torch.cat(to_a)).split(n)
                idt_a_img, idt_b_img = (idt_a[0], idt_b[0]) if identity else (None, None)
                rec_a = self.G_B(fake_b)
            else:
                fake_b = self.G_A(real_a)
                rec_a = self.G_B(fake_b)
                fake_a = self.G_B(real_b)
                rec_b = self.G_A(fake_a)
                idt_a_img = self.G_A(real_b) if identity else None
                idt_b_img = self.G_B(real_a) if identity else None
            state.cache["fake_a"], state.cache["fake_b"] = fake_a.detach(), fake_b.detach()
            with frozen(self.D_A, self.D_B):
                real_b_logits = self.adv.real_logits_for_g(lambda: self.D_A(real_b))
                real_a_logits = self.adv.real_logits_for_g(lambda: self.D_B(real_a))
                gan_a = self.adv.g(real=real_b_logits, fake=self.D_A(fake_b))
                gan_b = self.adv.g(real=real_a_logits, fake=self.D_B(fake_a))
            cycle_a = l1(rec_a, real_a) * c.lambda_a
            cycle_b = l1(rec_b, real_b) * c.lambda_b
            loss = gan_a + gan_b + cycle_a + cycle_b
            out = {
                "gan_a": gan_a.detach(),
                "gan_b": gan_b.detach(),
                "cycle_a": cycle_a.detach(),
                "cycle_b": cycle_b.detach(),
            }
            if identity:
                # G_A should leave B images alone (and G_B A images): keeps colours when they need not change.
                idt_a = l1(idt_a_img, real_b) * c.lambda_b * c.lambda_identity
                idt_b = l1(idt_b_img, real_a) * c.lambda_a * c.lambda_identity
                loss = loss + idt_a + idt_b
                out.update(idt_a=idt_a.detach(), idt_b=idt_b.detach())
            return {"loss": loss, **out}
        if phase == "d":
            fake_a, fake_b = state.cache.pop("fake_a", None), state.cache.pop("fake_b", None)
            if fake_a is None or fake_b is None:
                with torch.no_grad():
                    fake_a, fake_b = self.G_B(real_b), self.G_A(real_a)
            fake_b = self.pool_B.query(fake_b)
            fake_a = self.pool_A.query(fake_a)
            loss_da = self._d_loss(self.D_A, real_b, fake_b)
            loss_db = self._d_loss(self.D_B, real_a, fake_a)
            return {"loss": loss_da + loss_db, "d_a": loss_da.detach(), "d_b": loss_db.detach()}
        raise ValueError(f"unknown phase {phase!r}")

    def _d_loss(self, D: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
        if self.per_sample:  # one call on real and fake together: the same per-image computation
            real_logits, fake_logits = D(torch.cat([real, fake])).split([len(real), len(fake)])
        else:  # batch statistics must see real and fake apart
            real_logits, fake_logits = D(real), D(fake)
        return 0.5 * self.adv.d(real=real_logits, fake=fake_logits)

    #: Both ways: G_A maps A -> B, G_B maps B -> A (:class:`ganzoo.tasks.Translator`).
    directions: tuple[str, ...] = ("a2b", "b2a")

    @torch.no_grad()
    def translate(self, images: Tensor, direction: str = "a2b") -> Tensor:
        """``direction="a2b"`` translates domain A -> B with G_A, ``"b2a"`` B -> A with G_B. Images are
        ``B x C x H x W`` or ``C x H x W``, ``[-1, 1]`` floats or uint8, of any size (padded to a multiple of 4)."""
        if direction not in self.directions:
            raise ConfigError(f"unknown direction {direction!r}; cyclegan translates 'a2b' (G_A) and 'b2a' (G_B)")
        net = self.G_A if direction == "a2b" else self.G_B
        x = as_pm1(images)
        single = x.dim() == 3
        x = x[None] if single else x
        if x.shape[1] != self.config.channels:
            raise ConfigError(f"cyclegan expects {self.config.channels}-channel images, got {x.shape[1]} channels")
        out = run_padded(net, x.to(self.device), self.stride)
        return out[0] if single else out

    def inference_graphs(self) -> list[InferenceGraph]:
        """ONNX export, one graph per direction: ``a2b`` (G_A, input ``a``, output ``b``) and ``b2a`` (G_B, input
        ``b``, output ``a``), images ``(B, C, H, W)`` in [-1, 1]; ``H`` and ``W`` are dynamic, multiples of the
        generators' stride (the files' ``stride`` metadata)."""
        c = self.config
        return [
            image_to_image_graph(name, net, src, dst, c.channels, c.image_size, self.stride)
            for name, net, src, dst in (("a2b", self.G_A, "a", "b"), ("b2a", self.G_B, "b", "a"))
        ]

    def sample_inputs(self, n: int, generator: torch.Generator, batch: dict[str, Any] | None = None) -> dict[str, Any]:
        if batch is None:
            raise ConfigError("cyclegan sample grids need a batch of the data")
        return {"a": batch["a"][:n], "b": batch["b"][:n]}

    def sample_images(self, inputs: dict[str, Any]) -> SampleGrid:
        """a | G_A(a) | b | G_B(b) for each item, the columns captioned."""
        a, b = inputs["a"], inputs["b"]
        return SampleGrid.of_columns(
            [("A", a), ("A to B", self.translate(a, "a2b")), ("B", b), ("B to A", self.translate(b, "b2a"))]
        )
