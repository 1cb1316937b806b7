"""The exponential moving average of a variant's generators, used for sample grids, ``on_train_end`` and export."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from ..variant import GANVariant


class EMA:
    """An exponential moving average of each generator (timm's ModelEmaV3), swapped in for sampling and export.

    :param variant: the variant whose ``ema_modules`` are averaged.
    :param decay: the decay reached after warm-up (``TrainConfig.ema_decay``). Warm-up (timm's, power 2/3) gives step
        ``t`` the decay ``min(decay, 1 - (1 + t) ** (-2 / 3))``: 0.9937 at step 2,000, 0.9975 at 8,000, and 0.999 only
        from about step 31,600, so in shorter runs the average spans the last few hundred steps whatever ``decay`` is.
    """

    def __init__(self, variant: GANVariant, decay: float):
        from timm.utils import ModelEmaV3

        self.names = [m for m in variant.ema_modules if isinstance(getattr(variant, m, None), nn.Module)]
        # Warm-up keeps early samples meaningful: the effective decay grows from 0 towards ``decay``.
        self.emas = {m: ModelEmaV3(getattr(variant, m), decay=decay, use_warmup=True) for m in self.names}
        for e in self.emas.values():
            e.requires_grad_(False)

    def update(self, variant: GANVariant, step: int) -> None:
        """Fold the variant's current generator weights in, after step ``step``."""
        for m, e in self.emas.items():
            e.update(getattr(variant, m), step=step)

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """The averaged weights as checkpoint tensors, keyed ``ema/MODULE/KEY``."""
        return {f"ema/{m}/{k}": v for m, e in self.emas.items() for k, v in e.module.state_dict().items()}

    def load_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        """Restore what :meth:`state_tensors` returned (other keys of ``tensors`` are ignored)."""
        for m, e in self.emas.items():
            pre = f"ema/{m}/"
            e.module.load_state_dict({k[len(pre) :]: v for k, v in tensors.items() if k.startswith(pre)})

    @contextlib.contextmanager
    def swapped(self, variant: GANVariant) -> Iterator[None]:
        """Temporarily put the EMA networks in the variant's place."""
        originals = {m: getattr(variant, m) for m in self.emas}
        try:
            for m, e in self.emas.items():
                setattr(variant, m, e.module)
            yield
        finally:
            for m, mod in originals.items():
                setattr(variant, m, mod)
