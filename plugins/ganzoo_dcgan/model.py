"""DCGAN networks. At 64x64 with nz=100 and ngf=ndf=64 they have exactly the layers (and parameter counts:
G 3,576,704, D 2,765,568) of the widely used pytorch/examples implementation; other sizes drop or add one
stride-2 layer per factor of two and start from a 4x4 (or 7x7 for 28x28) map. With ``fc`` units, G makes that first
map with two fully connected layers and D ends in one before its logit (InfoGAN's MNIST networks at ``fc=1024``)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ganzoo.nn import pack as pack_samples


def plan(image_size: int) -> tuple[int, int]:
    """``(base, k)``: the smallest map side (4..7) and the number of stride-2 layers reaching ``image_size``."""
    k, size = 0, image_size
    while size > 7 and size % 2 == 0:
        size //= 2
        k += 1
    if not 4 <= size <= 7 or k < 1:
        raise ValueError(f"DCGAN needs image_size = 4..7 times a power of two (28, 32, 64, 128 ...); got {image_size}")
    return size, k


class Generator(nn.Module):
    def __init__(self, nz: int, ngf: int, nc: int, image_size: int, num_classes: int = 0, fc: int = 0):
        super().__init__()
        base, k = plan(image_size)
        self.num_classes = num_classes
        if num_classes:
            self.embed = nn.Embedding(num_classes, nz)
        ch = ngf * 2 ** (k - 1)
        nz_in = nz * (2 if num_classes else 1)
        layers: list[nn.Module] = []
        self.fc: nn.Module | None = None
        if fc:
            # InfoGAN's MNIST generator: two fully connected layers make the first map.
            self.fc = nn.Sequential(
                nn.Linear(nz_in, fc, bias=False),
                nn.BatchNorm1d(fc),
                nn.ReLU(True),
                nn.Linear(fc, ch * base * base, bias=False),
                nn.BatchNorm1d(ch * base * base),
                nn.ReLU(True),
                nn.Unflatten(1, (ch, base, base)),
            )
        else:
            layers += [nn.ConvTranspose2d(nz_in, ch, base, 1, 0, bias=False), nn.BatchNorm2d(ch), nn.ReLU(True)]
        for _ in range(k - 1):
            layers += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ch // 2), nn.ReLU(True)]
            ch //= 2
        layers += [nn.ConvTranspose2d(ch, nc, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        if self.num_classes:
            z = torch.cat([z, self.embed(y)[:, :, None, None].to(z.dtype)], 1)
        if self.fc is not None:
            z = self.fc(z.flatten(1))
        return self.main(z)


class Discriminator(nn.Module):
    """Outputs logits (the sigmoid lives in the loss). With ``num_classes`` it is a projection discriminator
    (Miyato & Koyama 2018): logit = w^T h + embed(y)^T h on the last feature map's spatial sum."""

    def __init__(self, ndf: int, nc: int, image_size: int, num_classes: int = 0, pack: int = 1, fc: int = 0):
        super().__init__()
        base, k = plan(image_size)
        self.pack, self.num_classes = pack, num_classes
        layers: list[nn.Module] = [nn.Conv2d(nc * pack, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True)]
        ch = ndf
        for _ in range(k - 1):
            layers += [
                nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(ch * 2),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            ch *= 2
        if fc:
            # InfoGAN's MNIST discriminator: a fully connected hidden layer before the logit.
            layers += [
                nn.Flatten(),
                nn.Linear(ch * base * base, fc, bias=False),
                nn.BatchNorm1d(fc),
                nn.LeakyReLU(0.2, inplace=True),
                nn.Unflatten(1, (fc, 1, 1)),
            ]
            ch, base = fc, 1
        self.features = nn.Sequential(*layers)
        self.head = nn.Conv2d(ch, 1, base, 1, 0, bias=False)
        if num_classes:
            self.embed = nn.Embedding(num_classes, ch)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        h = self.features(pack_samples(x, self.pack))
        out = self.head(h).flatten()
        if self.num_classes:
            out = out + (self.embed(y) * h.sum((2, 3))).sum(1)
        return out
