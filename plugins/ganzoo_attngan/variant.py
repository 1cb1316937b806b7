"""The AttnGAN variant: text-to-image with a DAMSM-trained text encoder and an attentional multi-stage generator."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganzoo import GANVariant, Phase, Stage, StepState, Task
from ganzoo.config import help, require
from ganzoo.errors import ConfigError, UnknownNameError
from ganzoo.export_onnx import InferenceGraph, InferenceNet
from ganzoo.losses import G_REAL, get_loss
from ganzoo.nn import init_weights
from ganzoo.utils.images import SampleGrid
from ganzoo.variant_config import GANConfig

from .model import Generator, StageDiscriminator, kl_loss, plan_sizes
from .text import ImageEncoder, TextEncoder, Vocabulary, damsm_loss, word_mask

# Shown in sample grids when no data batch is at hand (a model used without its dataset).
DEFAULT_CAPTIONS = [
    "a large red circle on the left",
    "a small blue square above a large green triangle",
    "a large yellow cross at the bottom",
    "a small white triangle left of a large purple circle",
]


# The DAMSM stage's default share of --steps (600 of the 3,600 steps of the first measured shapes32 run,
# docs/variants/attngan.md); the GAN stage gets the rest. The shapes32 recipe gives the encoders far more
# (4,500 of its 14,000 steps): they keep learning to tell the shapes apart long after their losses look flat.
DAMSM_FRACTION = 1 / 6


@dataclass
class AttnGANConfig(GANConfig):
    # Not PAIRED: the matching-aware discriminator's negatives include real images under a wrong caption (B - 1 of
    # them), which have no generated counterpart of the same shape.
    loss_provides: ClassVar[frozenset[str]] = frozenset({G_REAL})

    base_size: int = help("side of the first stage's images (64 in the paper)", 64)
    branches: int = help("generator stages; each doubles the side (3 in the paper: 64, 128, 256)", 3)
    channels: int = help("image channels (3 colour, 1 grayscale)", 3)
    nz: int = help("size of the noise vector z", 100)
    c_dim: int = help("size of the conditioning-augmentation code", 100)
    ngf: int = help("generator width: channels of every stage's features (gf_dim = 32 in the paper)", 32)
    ndf: int = help("discriminator width (df_dim = 64 in the paper)", 64)
    res_blocks: int = help("residual blocks per attentive stage", 2)
    nef: int = help("size of the DAMSM text/image embedding space", 256)
    emb_dim: int = help("word embedding size of the text encoder", 300)
    rnn_dropout: float = help("dropout on the word embeddings of the text encoder", 0.5)
    vocab_size: int = help("vocabulary capacity, PAD and UNK included; rarer training words become UNK", 6000)
    max_words: int = help("caption length in tokens: longer captions are truncated, shorter ones padded", 18)
    encoder_backbone: str = help("timm backbone of the DAMSM image encoder, trained from scratch", "resnet18")
    encoder_width: int = help("first-stage channels of a resnet encoder backbone (64 = standard resnet)", 64)
    local_index: int = help("backbone feature level giving the region features (the last gives the global)", 2)
    gamma1: float = help("DAMSM: sharpness of word-to-region attention", 4.0)
    gamma2: float = help("DAMSM: how much the best-matching words dominate the caption score", 5.0)
    gamma3: float = help("DAMSM: smoothing factor of the matching posterior", 10.0)
    lambda_damsm: float = help("weight of the DAMSM loss on the generator (5 on CUB, 50 on COCO)", 5.0)
    kl_weight: float = help("weight of the conditioning augmentation's KL term", 1.0)
    damsm_steps: int | None = help(
        "steps of the first stage, training the DAMSM text and image encoders; default: damsm_fraction of --steps "
        "(the paper trains them in a separate run, 600 epochs on CUB)",
        None,
    )
    damsm_fraction: float = help(
        "share of --steps the DAMSM stage gets when damsm_steps is unset, in (0, 1)", DAMSM_FRACTION
    )
    lr_damsm: float = help("Adam learning rate of the DAMSM encoders", 2e-3)
    batch_size: int = help("batch size (20 in the paper's CUB setting)", 20)
    data: str = help("default data spec when none is given", "shapes-captions")

    def validate(self) -> None:
        super().validate()
        try:
            plan_sizes(self.base_size, self.branches)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        if self.branches < 2:
            raise ConfigError(f"branches must be >= 2 (the attentive stages need a first stage), got {self.branches}")
        require(self, at_least_1=("nz", "c_dim", "ngf", "ndf", "nef", "emb_dim", "max_words", "encoder_width"))
        if self.batch_size < 2:
            raise ConfigError(
                f"batch_size must be >= 2 (DAMSM and the matching-aware discriminator take the batch's other "
                f"captions as negatives), got {self.batch_size}"
            )
        if self.nef % 2:
            raise ConfigError(f"nef must be even (two LSTM directions), got {self.nef}")
        if self.vocab_size < 3:
            raise ConfigError(f"vocab_size must be >= 3 (PAD, UNK and a word), got {self.vocab_size}")
        if self.channels not in (1, 3):
            raise ConfigError(f"channels must be 1 or 3, got {self.channels}")
        if self.damsm_steps is not None and self.damsm_steps < 1:
            raise ConfigError(f"damsm_steps must be >= 1 (or unset: damsm_fraction of --steps), got {self.damsm_steps}")
        if not 0 <= self.rnn_dropout < 1:
            raise ConfigError(f"rnn_dropout must be in [0, 1), got {self.rnn_dropout}")
        require(
            self,
            positive=("lr_damsm", "gamma1", "gamma2", "gamma3"),
            non_negative=("lambda_damsm", "kl_weight"),
            stage_share=("damsm_fraction",),
        )
        self._check_encoder()

    def _check_encoder(self) -> None:
        """The DAMSM image encoder's backbone is a timm model, and local_index one of its feature levels below the
        last (the global one)."""
        import timm

        if not timm.is_model(self.encoder_backbone):
            shown = timm.list_models("resnet*")
            raise UnknownNameError("encoder_backbone", self.encoder_backbone, shown, note="or any timm model name")
        if self.local_index < 0:
            raise ConfigError(f"local_index must be >= 0, got {self.local_index}")
        if self.encoder_backbone.startswith("resnet") and self.local_index < 4:
            return  # every resnet has five feature levels; skip building the probe for the common case
        try:
            with torch.device("meta"):
                probe = timm.create_model(self.encoder_backbone, pretrained=False, features_only=True)
        except Exception as e:  # noqa: BLE001 - timm's own errors for models without feature maps
            raise ConfigError(
                f"encoder_backbone {self.encoder_backbone!r} cannot give feature maps: {str(e).splitlines()[0]}"
            ) from None
        last = len(probe.feature_info) - 1
        if self.local_index >= last:
            raise ConfigError(
                f"local_index must be in 0..{last - 1} for encoder_backbone {self.encoder_backbone}, got "
                f"{self.local_index}"
            )


class AttnGAN(GANVariant):
    """AttnGAN (Xu et al. 2018): DAMSM pre-training of text and image encoders, then an attentional GAN."""

    name = "attngan"
    task = Task.TEXT_TO_IMAGE
    Config = AttnGANConfig
    description = "text-to-image: DAMSM-trained encoders, multi-stage generator attending over words"
    tags = {
        # The measured CPU configuration of docs/variants/attngan.md: 16 -> 32 pixels, small widths.
        "shapes32": {
            "base_size": 16,
            "branches": 2,
            "nz": 32,
            "c_dim": 32,
            "ngf": 24,
            "ndf": 24,
            "nef": 64,
            "emb_dim": 64,
            "rnn_dropout": 0.1,
            "vocab_size": 64,
            "max_words": 14,
            "encoder_width": 16,
            "batch_size": 24,
            # The CPU recipe (docs/benchmarks.md, "Recipes"): 4,500 DAMSM + 9,500 GAN steps. A DAMSM trained
            # 1,500 steps hardly tells the shapes apart, so neither does the generator it guides.
            # 0.3214 of 14,000 rounds to exactly 4,500.
            "damsm_fraction": 0.3214,
            # Twice the paper's CUB weight (COCO's is 50): over seeds 0 and 1, R-precision 68.0 % against 64.8 at 5
            # and 48.8 at 2, with fewer stray second shapes under one-shape captions.
            "lambda_damsm": 10.0,
            # The hinge loss for D and G: over seeds 0-2, R-precision 72.8 % against 70.2 with the logistic loss,
            # and no seed draws stray second shapes under one-shape captions (count margin 33.7-49.3 points, against
            # 2.5 for seed 1 with the logistic loss).
            "loss": "hinge",
            "default_steps": 14000,
        },
        "shapes64": {"base_size": 32, "branches": 2, "nef": 128, "emb_dim": 128, "vocab_size": 64, "max_words": 14},
    }
    tag_descriptions = {
        "shapes32": "16 -> 32 px with small widths, the hinge loss, 14,000 steps (4,500 DAMSM): the CPU recipe for "
        "shapes-captions",
        "shapes64": "32 -> 64 px on shapes-captions, text encoder width 128",
    }
    ema_modules = ("G",)
    # LSTM and 4x4 feature maps: channels_last buys nothing here.
    channels_last = False
    bench_sizes = {"standard": {}, "small": {"base_size": 32, "branches": 2, "batch_size": 8}}
    tiny = {
        "base_size": 8,
        "branches": 2,
        "nz": 8,
        "c_dim": 8,
        "ngf": 4,
        "ndf": 4,
        "nef": 8,
        "emb_dim": 8,
        "vocab_size": 40,
        "max_words": 12,
        "encoder_width": 4,
        "damsm_steps": 1,
        "batch_size": 4,
    }
    default_data_spec = "shapes-captions"

    def __init__(self, config: AttnGANConfig | None = None):
        super().__init__(config)
        c = self.config
        self.sizes = plan_sizes(c.base_size, c.branches)
        self.adv = get_loss(c.loss)
        self.vocab = Vocabulary()
        self.text_encoder = TextEncoder(c.vocab_size, c.emb_dim, c.nef, c.rnn_dropout)
        self.image_encoder = ImageEncoder(c.nef, c.channels, c.encoder_backbone, c.encoder_width, c.local_index)
        self.G = init_weights(Generator(c.nz, c.nef, c.c_dim, c.ngf, c.base_size, c.branches, c.channels, c.res_blocks))
        self.D = init_weights(nn.ModuleList(StageDiscriminator(c.ndf, c.nef, s, c.channels) for s in self.sizes))

    # ---- contract ---------------------------------------------------------------------------------------------------
    @property
    def image_size(self) -> int:
        return self.sizes[-1]

    def data_options(self) -> dict[str, Any]:
        # Plain words, never this object: a fresh model passes none and the dataset fits a vocabulary of at most
        # vocab_size words on its training captions; a resumed or fine-tuned model passes its own, so that ids
        # always mean what the saved vocabulary says.
        c = self.config
        words = None if self.vocab.is_empty else self.vocab.to_list()
        return {"vocab": words, "max_words": c.max_words, "vocab_size": c.vocab_size}

    def prepare_data(self, dataset: Any) -> None:
        """Adopt the training dataset's vocabulary when this model has none yet (a fresh run); a model that has
        one (resumed, fine-tuned) handed it to the dataset through :meth:`data_options` and keeps it."""
        vocab = getattr(dataset, "vocab", None)
        if not isinstance(vocab, Vocabulary):
            raise ConfigError(
                f"attngan trains on captioned datasets that tokenize with a vocabulary (shapes-captions, "
                f"mnist-captions, captions); {type(dataset).__name__} has none"
            )
        if self.vocab.is_empty:
            self.vocab.load(vocab.to_list())
        elif vocab != self.vocab:
            raise ConfigError(
                f"{type(dataset).__name__} tokenizes with its own vocabulary, not the model's; a text_to_image "
                "dataset must use DataRequest.options['vocab'] when given"
            )

    def extra_metadata(self) -> dict[str, Any]:
        return {"vocab": self.vocab.to_list()}

    def load_extra_metadata(self, data: dict[str, Any]) -> None:
        if data.get("vocab"):
            self.vocab.load(data["vocab"])

    def stages(self) -> list[Stage]:
        c = self.config
        betas = (c.beta1, c.beta2)
        return [
            Stage(
                "damsm",
                (Phase("damsm", ("text_encoder", "image_encoder"), c.lr_damsm, betas),),
                steps=c.damsm_steps,
                fraction=c.damsm_fraction,
                setting="damsm_steps",
            ),
            Stage("gan", (Phase("d", ("D",), c.lr_d, betas), Phase("g", ("G",), c.lr_g, betas))),
        ]

    # ---- pieces -----------------------------------------------------------------------------------------------------
    def encode_text(self, tokens: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(words (B, nef, L), sentence (B, nef), mask (B, L))``."""
        words, sent = self.text_encoder(tokens, lengths)
        return words, sent, word_mask(lengths, tokens.shape[1])

    def tokenize(self, captions: Sequence[str]) -> tuple[Tensor, Tensor]:
        """Token ids ``(B, max_words)`` and lengths ``(B,)`` of ``captions`` with the model's vocabulary."""
        return self.vocab.encode_batch(list(captions), self.config.max_words)

    def _frozen_text(self, batch: dict[str, Any], state: StepState) -> tuple[Tensor, Tensor, Tensor]:
        if "text" not in state.cache:
            # Frozen after the DAMSM stage, and in eval mode: no dropout, batch-norm running statistics.
            self.text_encoder.eval()
            self.image_encoder.eval()
            with torch.no_grad():
                state.cache["text"] = self.encode_text(batch["tokens"], batch["length"])
        return state.cache["text"]

    def _reals(self, image: Tensor) -> list[Tensor]:
        # Each stage's discriminator sees the real image at its own size (box-filtered down by powers of two).
        return [F.avg_pool2d(image, image.shape[-1] // s) if s != image.shape[-1] else image for s in self.sizes]

    def _damsm(self, images: Tensor, words: Tensor, sent: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        c = self.config
        regions, glob = self.image_encoder(images)
        return damsm_loss(regions, glob, words, sent, mask, c.gamma1, c.gamma2, c.gamma3)

    def loss(self, phase: str, batch: dict[str, Any], state: StepState) -> dict[str, Tensor]:
        real = batch["image"]
        if real.shape[-1] != self.image_size:
            raise ConfigError(f"attngan makes {self.image_size}px images but the data has {real.shape[-1]}px")
        if phase == "damsm":
            words, sent, mask = self.encode_text(batch["tokens"], batch["length"])
            w_loss, s_loss, _ = self._damsm(real, words, sent, mask)
            return {"loss": w_loss + s_loss, "words": w_loss.detach(), "sent": s_loss.detach()}
        words, sent, mask = self._frozen_text(batch, state)
        if phase == "d":
            z = torch.randn(real.shape[0], self.config.nz, device=real.device)
            fakes, _, mu, logvar = self.G(z, sent, words, mask)
            state.cache["fake"] = (fakes, mu, logvar)  # reused by G's phase: one generator forward per step
            total = real.new_zeros(())
            out: dict[str, Tensor] = {}
            for i, (d, x, f) in enumerate(zip(self.D, self._reals(real), fakes)):
                hr, hf = d.features_of(x), d.features_of(f.detach())
                real_c, real_u = d.logits(hr, sent), d.logits(hr, None)
                fake_c, fake_u = d.logits(hf, sent), d.logits(hf, None)
                matched = self.adv.d(real=real_c, fake=fake_c) + self.adv.d(real=real_u, fake=fake_u)
                loss_i = matched / 2
                if real.shape[0] > 1:
                    # Real images with the wrong caption are fakes to the conditional logit (matching-aware D). The
                    # weights give every real term 1/2 and every fake term 1/3, as in AttnGAN's
                    # (real_c + real_u) / 2 + (fake_c + fake_u + wrong) / 3 for losses with separate terms.
                    wrong = d.logits(hr[:-1], sent[1:])
                    mismatched = self.adv.d(real=real_c, fake=wrong) + self.adv.d(real=real_u, fake=wrong)
                    loss_i = matched / 3 + mismatched / 6
                total = total + loss_i
                out[f"d{i}"] = loss_i.detach()
            return {"loss": total, **out}
        if phase == "g":
            cached = state.cache.pop("fake", None)
            if cached is None:
                z = torch.randn(real.shape[0], self.config.nz, device=real.device)
                fakes, _, mu, logvar = self.G(z, sent, words, mask)
            else:
                fakes, mu, logvar = cached
            adv = real.new_zeros(())
            for d, x, f in zip(self.D, self._reals(real), fakes):
                real_c = real_u = None
                if self.adv.needs_real_in_g:  # constant with respect to G: no graph
                    with torch.no_grad():
                        hr = d.features_of(x)
                        real_c, real_u = d.logits(hr, sent), d.logits(hr, None)
                h = d.features_of(f)
                adv = adv + self.adv.g(real=real_c, fake=d.logits(h, sent))
                adv = adv + self.adv.g(real=real_u, fake=d.logits(h, None))
            w_loss, s_loss, _ = self._damsm(fakes[-1], words, sent, mask)
            kl = kl_loss(mu, logvar)
            c = self.config
            total = adv + c.lambda_damsm * (w_loss + s_loss) + c.kl_weight * kl
            return {"loss": total, "adv": adv.detach(), "damsm": (w_loss + s_loss).detach(), "kl": kl.detach()}
        raise ValueError(f"unknown phase {phase!r}")

    # ---- inference --------------------------------------------------------------------------------------------------
    def _inputs(
        self, captions: str | Sequence[str], n: int | None, z: Tensor | None, eps: Tensor | None, seed: int | None
    ) -> tuple[list[str], Tensor, Tensor]:
        caps = [captions] if isinstance(captions, str) else list(captions)
        if not caps:
            raise ConfigError("generate needs at least one caption")
        if n is not None and len(caps) == 1:
            caps = caps * n
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        if z is None:
            z = torch.randn(len(caps), self.config.nz, generator=gen)
        if eps is None:
            eps = torch.randn(len(caps), self.config.c_dim, generator=gen)
        if z.shape[0] != len(caps):
            raise ConfigError(f"{len(caps)} captions but {z.shape[0]} noise vectors")
        return caps, z, eps

    @torch.no_grad()
    def generate_details(
        self,
        captions: str | Sequence[str],
        n: int | None = None,
        z: Tensor | None = None,
        eps: Tensor | None = None,
        seed: int | None = None,
    ) -> dict[str, Any]:
        """Everything the generator makes for ``captions``: ``images`` of every stage (smallest first),
        ``attention`` of every attentive stage ``(B, L, h, w)``, the ``tokens``/``lengths`` and ``words`` read."""
        caps, z, eps = self._inputs(captions, n, z, eps, seed)
        tokens, lengths = self.tokenize(caps)
        dev = self.device
        self.text_encoder.eval()
        words, sent, mask = self.encode_text(tokens.to(dev), lengths.to(dev))
        images, attns, _, _ = self.G(z.to(dev), sent, words, mask, eps=eps.to(dev))
        read = [self.vocab.decode(t, int(n_)) for t, n_ in zip(tokens, lengths)]
        return {"images": images, "attention": attns, "tokens": tokens, "lengths": lengths, "words": read}

    @torch.no_grad()
    def generate_from_captions(
        self,
        captions: str | Sequence[str],
        *,
        n: int | None = None,
        z: Tensor | None = None,
        eps: Tensor | None = None,
        seed: int | None = None,
    ) -> Tensor:
        """Images in [-1, 1], one per caption (one caption with ``n`` gives ``n`` images of it); ``seed`` makes the
        noise (``z`` and the conditioning augmentation's ``eps``) reproducible. See
        :class:`ganzoo.tasks.TextToImageGenerator`."""
        return self.generate_details(captions, n, z, eps, seed)["images"][-1]

    @torch.no_grad()
    def embed_images(self, images: Tensor) -> Tensor:
        """DAMSM global image vectors ``(B, nef)`` of ``[-1, 1]`` images (for R-precision)."""
        self.image_encoder.eval()
        return self.image_encoder(images.to(self.device))[1]

    @torch.no_grad()
    def embed_captions(self, captions: Sequence[str]) -> Tensor:
        """DAMSM sentence vectors ``(B, nef)`` of ``captions`` (for R-precision)."""
        self.text_encoder.eval()
        tokens, lengths = self.tokenize(captions)
        return self.text_encoder(tokens.to(self.device), lengths.to(self.device))[1]

    def inference_graphs(self) -> list[InferenceGraph]:
        """ONNX export of text-to-image, text encoder included: ``tokens (B, max_words)`` int64 word ids and
        ``lengths (B,)`` int64 (>= 1), ``z (B, nz)`` and ``eps (B, c_dim)`` standard normal noise -> ``image (B, C,
        S, S)`` in [-1, 1], the last stage's. Tokenize as :meth:`tokenize` does, with the id -> word list in the
        file's ``vocab`` metadata (JSON; id 0 pads, 1 is unknown words).

        The encoder's packed sequences do not export, so the graph runs the same bidirectional LSTM twice on padded
        batches: once on the words as they are (the forward direction reads them first), once on the words moved
        to the end of the sequence (the backward direction reads them first); padding only ever follows the words
        a direction has read, so both give the packed LSTM's outputs and final states."""
        import json

        c = self.config

        def run(nets: InferenceNet, tokens: Tensor, lengths: Tensor, z: Tensor, eps: Tensor) -> Tensor:
            enc = nets.text_encoder
            n, hid = tokens.shape[1], enc.rnn.hidden_size
            tokens = torch.where(tokens < enc.embed.num_embeddings, tokens, torch.full_like(tokens, Vocabulary.UNK))
            emb = enc.embed(tokens)
            length = lengths.clamp(1, n)[:, None]
            pos = torch.arange(n, device=tokens.device)[None, :]
            # Right-aligned copy: position t holds word t - (n - length); the positions before hold word 0 (unread).
            shift = n - length
            right = torch.gather(emb, 1, (pos - shift).clamp_min(0)[:, :, None].expand(-1, -1, emb.shape[2]))
            fwd = enc.rnn(emb)[0][:, :, :hid]
            bwd = enc.rnn(right)[0][:, :, hid:]
            bwd = torch.gather(bwd, 1, (pos + shift).clamp_max(n - 1)[:, :, None].expand(-1, -1, hid))
            mask = pos < lengths[:, None]
            words = (torch.cat([fwd, bwd], 2) * (pos < length)[:, :, None]).transpose(1, 2)
            last = torch.gather(fwd, 1, (length - 1)[:, :, None].expand(-1, 1, hid))[:, 0]
            sent = torch.cat([last, bwd[:, 0]], 1)
            return nets.G(z, sent, words, mask, eps=eps)[0][-1]

        gen = torch.Generator().manual_seed(0)
        tokens = torch.randint(2, max(c.vocab_size, 3), (2, c.max_words), generator=gen)
        lengths = torch.tensor([c.max_words, max(c.max_words // 2, 1)])
        tokens[1, int(lengths[1]) :] = Vocabulary.PAD
        z = torch.randn(2, c.nz, generator=gen)
        eps = torch.randn(2, c.c_dim, generator=gen)
        batch = {0: "batch"}
        side = self.image_size
        return [
            InferenceGraph(
                "text_to_image",
                InferenceNet(run, text_encoder=self.text_encoder, G=self.G),
                (tokens, lengths, z, eps),
                ("tokens", "lengths", "z", "eps"),
                ("image",),
                {"tokens": batch, "lengths": batch, "z": batch, "eps": batch, "image": batch},
                check_inputs=(
                    torch.cat([tokens, tokens[1:]]),
                    torch.tensor([1, int(lengths[1]), c.max_words]),
                    torch.randn(3, c.nz, generator=gen),
                    torch.randn(3, c.c_dim, generator=gen),
                ),
                description=f"tokens: (B, {c.max_words}) int64 word ids (metadata vocab), lengths: (B,) int64, z: (B, "
                f"{c.nz}), eps: (B, {c.c_dim}) noise -> image: (B, {c.channels}, {side}, {side}) in [-1, 1]",
                metadata={"vocab": json.dumps(self.vocab.to_list()), "max_words": str(c.max_words)},
            )
        ]

    def sample_inputs(self, n: int, generator: torch.Generator, batch: dict[str, Any] | None = None) -> dict[str, Any]:
        caps = list(batch["caption"]) if batch is not None and "caption" in batch else list(DEFAULT_CAPTIONS)
        caps = (caps * (n // len(caps) + 1))[:n]
        z = torch.randn(n, self.config.nz, generator=generator)
        eps = torch.randn(n, self.config.c_dim, generator=generator)
        return {"captions": caps, "z": z, "eps": eps}

    def sample_images(self, inputs: dict[str, Any]) -> SampleGrid:
        """The last stage's images for the fixed captions and noise of :meth:`sample_inputs`, each caption under
        its image."""
        images = self.generate_from_captions(inputs["captions"], z=inputs["z"], eps=inputs["eps"])
        return SampleGrid(images, captions=[str(c) for c in inputs["captions"]])
