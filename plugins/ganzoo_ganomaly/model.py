"""GANomaly networks (Akcay, Atapour-Abarghouei & Breckon, ACCV 2018).

The layer plan is the one of the paper's code (DCGAN-style): an encoder halves the side with 4x4 stride-2
convolutions (batch norm on every one but the first, LeakyReLU 0.2) until a 4x4 map, then a 4x4 valid convolution
gives the ``nz``-vector; the decoder mirrors it with transposed convolutions, batch norm and ReLU, ending in tanh.
At 32x32 with ``ndf = ngf = 64`` the widths are 64-128-256 (encoder) and 256-128-64 (decoder).
"""

from __future__ import annotations

from torch import Tensor, nn


def plan(image_size: int) -> int:
    """Number of stride-2 layers from ``image_size`` down to a 4x4 map (``image_size`` = 4 * 2**k, k >= 1)."""
    k, size = 0, image_size
    while size > 4 and size % 2 == 0:
        size //= 2
        k += 1
    if size != 4 or k < 1:
        raise ValueError(f"GANomaly needs image_size = 4 times a power of two (8, 16, 32, 64 ...); got {image_size}")
    return k


class Encoder(nn.Module):
    """``x (B, nc, S, S)`` -> ``(B, nz, 1, 1)``. ``features`` ends at the last 4x4 map, which the discriminator
    uses for feature matching."""

    def __init__(self, image_size: int, nz: int, nc: int, ndf: int):
        super().__init__()
        k = plan(image_size)
        layers: list[nn.Module] = [nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True)]
        ch = ndf
        for _ in range(k - 1):
            layers += [nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ch * 2), nn.LeakyReLU(0.2, True)]
            ch *= 2
        self.features = nn.Sequential(*layers)
        self.final = nn.Conv2d(ch, nz, 4, 1, 0, bias=False)
        self.out_channels = ch

    def forward(self, x: Tensor) -> Tensor:
        return self.final(self.features(x))


class Decoder(nn.Module):
    """``z (B, nz, 1, 1)`` -> ``(B, nc, S, S)`` in ``[-1, 1]``."""

    def __init__(self, image_size: int, nz: int, nc: int, ngf: int):
        super().__init__()
        k = plan(image_size)
        ch = ngf * 2 ** (k - 1)
        layers: list[nn.Module] = [nn.ConvTranspose2d(nz, ch, 4, 1, 0, bias=False), nn.BatchNorm2d(ch), nn.ReLU(True)]
        for _ in range(k - 1):
            layers += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ch // 2), nn.ReLU(True)]
            ch //= 2
        layers += [nn.ConvTranspose2d(ch, nc, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.main(z)


class Generator(nn.Module):
    """Encoder -> decoder -> encoder: ``x -> z -> x_hat -> z_hat``. The anomaly score is ``mean((z - z_hat)^2)``:
    trained on normal data only, the second encoder learns to agree with the first on normal images alone."""

    def __init__(self, image_size: int, nz: int, nc: int, ngf: int, ndf: int):
        super().__init__()
        self.encoder1 = Encoder(image_size, nz, nc, ndf)
        self.decoder = Decoder(image_size, nz, nc, ngf)
        self.encoder2 = Encoder(image_size, nz, nc, ndf)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        z = self.encoder1(x)
        x_hat = self.decoder(z)
        return x_hat, z, self.encoder2(x_hat)


class Discriminator(nn.Module):
    """The DCGAN discriminator: an :class:`Encoder` with a one-logit head (the sigmoid lives in the loss).
    ``forward`` returns ``(logits (B,), features (B, C, 4, 4))``; the features drive the adversarial loss of G."""

    def __init__(self, image_size: int, nc: int, ndf: int):
        super().__init__()
        enc = Encoder(image_size, 1, nc, ndf)
        self.features = enc.features
        self.head = enc.final

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = self.features(x)
        return self.head(h).flatten(), h
