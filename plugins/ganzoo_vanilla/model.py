"""MLP generators and discriminators.

``keras``: the two-layer MLPs of the Keras GAN example of the original paper's model for 28x28 digits
(G: z 100 -> 128 ReLU -> 784 tanh; D: 784 -> 128 LeakyReLU(0.2) -> 1).
``pacgan2d``: the nets of the PacGAN 2D mixture experiments (G: four hidden layers of 400 ReLU units with batch norm,
z in R^2; D: maxout layers of 200 units x 5 pieces), used for the ring/grid mode-collapse benchmark.
"""

from __future__ import annotations

import math

from torch import Tensor, nn

from ganzoo.nn import Maxout
from ganzoo.nn import pack as pack_samples


class MLPGenerator(nn.Module):
    def __init__(self, nz: int, hidden: int, layers: int, out_shape: tuple[int, ...], batch_norm: bool, tanh: bool):
        super().__init__()
        self.out_shape = out_shape
        mods: list[nn.Module] = []
        width = nz
        for _ in range(layers):
            mods.append(nn.Linear(width, hidden))
            if batch_norm:
                mods.append(nn.BatchNorm1d(hidden))
            mods.append(nn.ReLU(True))
            width = hidden
        mods.append(nn.Linear(width, math.prod(out_shape)))
        if tanh:
            mods.append(nn.Tanh())
        self.main = nn.Sequential(*mods)

    def forward(self, z: Tensor) -> Tensor:
        return self.main(z).view(z.shape[0], *self.out_shape)


class MLPDiscriminator(nn.Module):
    """Outputs logits (the sigmoid lives in the loss)."""

    def __init__(self, in_features: int, hidden: int, layers: int, maxout_pieces: int, pack: int):
        super().__init__()
        self.pack = pack
        mods: list[nn.Module] = []
        width = in_features * pack
        for _ in range(layers):
            if maxout_pieces > 1:
                mods.append(Maxout(width, hidden, maxout_pieces))
            else:
                mods += [nn.Linear(width, hidden), nn.LeakyReLU(0.2, inplace=True)]
            width = hidden
        mods.append(nn.Linear(width, 1))
        self.main = nn.Sequential(*mods)

    def forward(self, x: Tensor) -> Tensor:
        return self.main(pack_samples(x.flatten(1), self.pack)).flatten()
