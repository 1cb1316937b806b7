"""AttnGAN networks (Xu et al. 2018): conditioning augmentation, a multi-stage generator whose later stages attend
over the words, and one conditional/unconditional discriminator per stage. Layer shapes follow the reference
implementation's ``G_NET``/``D_NET64`` at 64 -> 128 -> 256 with ``ngf = 32``; other sizes add or drop up/down
blocks so the first stage starts at 4x4 and every discriminator ends at 4x4."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def _glu_conv(cin: int, cout: int) -> list[nn.Module]:
    # GLU halves the channels, so the convolution makes twice what the block outputs.
    return [nn.Conv2d(cin, cout * 2, 3, 1, 1, bias=False), nn.BatchNorm2d(cout * 2), nn.GLU(dim=1)]


def up_block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), *_glu_conv(cin, cout))


class ResBlock(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.body = nn.Sequential(*_glu_conv(ch, ch), nn.Conv2d(ch, ch, 3, 1, 1, bias=False), nn.BatchNorm2d(ch))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class CondAugment(nn.Module):
    """Conditioning augmentation (StackGAN): the sentence feature parameterises a Gaussian, the generator is
    conditioned on a sample of it, and a KL term keeps it close to N(0, I) (smoother conditioning manifold)."""

    def __init__(self, nef: int, c_dim: int):
        super().__init__()
        self.c_dim = c_dim
        self.fc = nn.Sequential(nn.Linear(nef, c_dim * 4), nn.GLU(dim=1))

    def forward(self, sent: Tensor, eps: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        mu, logvar = self.fc(sent).chunk(2, dim=1)
        if eps is None:
            eps = torch.randn_like(mu)
        return mu + eps.to(mu) * torch.exp(0.5 * logvar), mu, logvar


def kl_loss(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, sigma^2) || N(0, I)), averaged over the elements as the reference code does."""
    return (-0.5 * (1 + logvar - mu.square() - logvar.exp())).float().mean()


class WordAttention(nn.Module):
    """Attention of every image location over the words: word features are projected to the image channels, each
    location's query is its feature vector, padding words get no weight. Returns the word-context map and the
    attention ``(B, L, H, W)``."""

    def __init__(self, ch: int, nef: int):
        super().__init__()
        self.proj = nn.Conv1d(nef, ch, 1, bias=False)

    def forward(self, h: Tensor, words: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        b, c, hh, ww = h.shape
        keys = self.proj(words.to(h.dtype))  # (B, C, L)
        logits = torch.einsum("bcn,bcl->bnl", h.flatten(2), keys)
        logits = logits.masked_fill(~mask[:, None, :], float("-inf"))
        attn = logits.float().softmax(dim=2).to(h.dtype)  # (B, N, L)
        context = torch.einsum("bnl,bcl->bcn", attn, keys).reshape(b, c, hh, ww)
        return context, attn.transpose(1, 2).reshape(b, -1, hh, ww)


class InitStage(nn.Module):
    """z and the condition -> a ``base_size`` feature map with ``ngf`` channels (4x4, then up-blocks)."""

    def __init__(self, in_dim: int, ngf: int, base_size: int):
        super().__init__()
        ups = int(math.log2(base_size // 4))
        self.ch = ngf * 2**ups
        self.fc = nn.Sequential(
            nn.Linear(in_dim, self.ch * 16 * 2, bias=False), nn.BatchNorm1d(self.ch * 32), nn.GLU(1)
        )
        self.ups = nn.Sequential(*[up_block(self.ch // 2**i, self.ch // 2 ** (i + 1)) for i in range(ups)])

    def forward(self, x: Tensor) -> Tensor:
        return self.ups(self.fc(x).view(x.shape[0], self.ch, 4, 4))


class NextStage(nn.Module):
    """AttnGAN's NEXT_STAGE_G: word attention, [h, context] through residual blocks, then one up-block."""

    def __init__(self, ngf: int, nef: int, res_blocks: int = 2):
        super().__init__()
        self.attn = WordAttention(ngf, nef)
        self.res = nn.Sequential(*[ResBlock(ngf * 2) for _ in range(res_blocks)])
        self.up = up_block(ngf * 2, ngf)

    def forward(self, h: Tensor, words: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        context, attn = self.attn(h, words, mask)
        return self.up(self.res(torch.cat([h, context], 1))), attn


class Generator(nn.Module):
    """All stages; ``forward`` returns the image of every stage (smallest first), the attention maps of every
    attentive stage, and the conditioning augmentation's ``mu``/``logvar`` for the KL term."""

    def __init__(
        self,
        nz: int,
        nef: int,
        c_dim: int,
        ngf: int,
        base_size: int,
        branches: int,
        channels: int = 3,
        res_blocks: int = 2,
    ):
        super().__init__()
        self.nz = nz
        self.ca = CondAugment(nef, c_dim)
        self.init = InitStage(nz + c_dim, ngf, base_size)
        self.stages = nn.ModuleList(NextStage(ngf, nef, res_blocks) for _ in range(branches - 1))
        self.heads = nn.ModuleList(
            nn.Sequential(nn.Conv2d(ngf, channels, 3, 1, 1, bias=False), nn.Tanh()) for _ in range(branches)
        )

    def forward(
        self, z: Tensor, sent: Tensor, words: Tensor, mask: Tensor, eps: Tensor | None = None
    ) -> tuple[list[Tensor], list[Tensor], Tensor, Tensor]:
        c, mu, logvar = self.ca(sent.to(z.dtype), eps)
        h = self.init(torch.cat([z.flatten(1), c], 1))
        images, attns = [self.heads[0](h)], []
        for stage, head in zip(self.stages, self.heads[1:]):
            h, attn = stage(h, words, mask)
            images.append(head(h))
            attns.append(attn)
        return images, attns, mu, logvar


class StageDiscriminator(nn.Module):
    """D of one stage: downsampling to 4x4, then an unconditional logit and a logit conditioned on the sentence
    feature (concatenated at every location, as in AttnGAN's D_GET_LOGITS)."""

    def __init__(self, ndf: int, nef: int, image_size: int, channels: int = 3):
        super().__init__()
        downs = int(math.log2(image_size // 4))
        layers: list[nn.Module] = [nn.Conv2d(channels, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
        ch = ndf
        for _ in range(downs - 1):
            out = min(ch * 2, ndf * 8)
            layers += [nn.Conv2d(ch, out, 4, 2, 1, bias=False), nn.BatchNorm2d(out), nn.LeakyReLU(0.2, True)]
            ch = out
        self.features = nn.Sequential(*layers)
        self.uncond = nn.Conv2d(ch, 1, 4, 4)
        self.joint = nn.Sequential(
            nn.Conv2d(ch + nef, ch, 3, 1, 1, bias=False), nn.BatchNorm2d(ch), nn.LeakyReLU(0.2, True)
        )
        self.cond = nn.Conv2d(ch, 1, 4, 4)

    def features_of(self, x: Tensor) -> Tensor:
        return self.features(x)

    def logits(self, h: Tensor, sent: Tensor | None) -> Tensor:
        if sent is None:
            return self.uncond(h).flatten()
        s = sent.to(h.dtype)[:, :, None, None].expand(-1, -1, h.shape[2], h.shape[3])
        return self.cond(self.joint(torch.cat([h, s], 1))).flatten()


def plan_sizes(base_size: int, branches: int) -> list[int]:
    """Image side of every stage; raises ValueError for sizes the nets cannot make."""
    if base_size < 8 or base_size & (base_size - 1):
        raise ValueError(f"base_size must be a power of two >= 8, got {base_size}")
    if branches < 1:
        raise ValueError(f"branches must be >= 1, got {branches}")
    return [base_size * 2**i for i in range(branches)]
