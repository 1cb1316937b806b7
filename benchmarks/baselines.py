"""Plain-PyTorch training steps, written the straightforward way the reference implementations do it (eager fp32,
contiguous tensors, default Adam, the generator's forward reused, D on detached fakes), over the *same* networks as
ganzoo's variant (deep copies), so the measured ratio is what ganzoo's training machinery buys. They reach into the
variants' networks by attribute (``G``, ``D``, ``G_A`` ...), which is why they live here, beside the speed suite, and
not in the core.

- DCGAN: pytorch/examples ``dcgan/main.py`` (BCE; D's weight gradients are computed in G's step too, as there).
- pix2pix: pytorch-CycleGAN-and-pix2pix ``Pix2PixModel.optimize_parameters`` (D frozen in G's step).
- CycleGAN: the same project's ``CycleGANModel.optimize_parameters`` (identity loss, image pools of 50).
"""

from __future__ import annotations

import copy
import random
import statistics
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ganzoo.bench import median_ms, prepare


def deepcopy_fp32(module: torch.nn.Module) -> torch.nn.Module:
    """A contiguous fp32 copy for the plain-PyTorch baselines. Layers that ganzoo computes its own way declare the
    torch layer they replace (``reference_class``, same parameters and keys) and are turned back into it, so the
    baseline runs the reference's layers."""
    copied = copy.deepcopy(module).float().to(memory_format=torch.contiguous_format)
    for m in copied.modules():
        ref = getattr(type(m), "reference_class", None)
        if ref is not None:
            m.__class__ = ref
    return copied


def _adam(params, lr=2e-4):
    return torch.optim.Adam(params, lr=lr, betas=(0.5, 0.999))


def _bce(logits, target):
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


class DCGANBaseline:
    def __init__(self, variant, batch):
        self.G, self.D = deepcopy_fp32(variant.G), deepcopy_fp32(variant.D)
        self.nz = variant.config.nz
        self.real = batch["image"].float().contiguous()
        self.opt_g, self.opt_d = _adam(self.G.parameters()), _adam(self.D.parameters())

    def step(self):
        real = self.real
        self.D.zero_grad()
        err_real = _bce(self.D(real), 1.0)
        err_real.backward()
        fake = self.G(torch.randn(real.shape[0], self.nz, 1, 1, device=real.device))
        err_fake = _bce(self.D(fake.detach()), 0.0)
        err_fake.backward()
        self.opt_d.step()
        self.G.zero_grad()
        err_g = _bce(self.D(fake), 1.0)
        err_g.backward()
        self.opt_g.step()


def _set_requires_grad(nets, flag):
    for net in nets:
        for p in net.parameters():
            p.requires_grad = flag


class Pix2PixBaseline:
    def __init__(self, variant, batch, lambda_l1=100.0):
        self.G, self.D = deepcopy_fp32(variant.G), deepcopy_fp32(variant.D)
        self.a, self.b = batch["a"].float().contiguous(), batch["b"].float().contiguous()
        self.opt_g, self.opt_d = _adam(self.G.parameters()), _adam(self.D.parameters())
        self.lambda_l1 = lambda_l1

    def step(self):
        a, b = self.a, self.b
        fake = self.G(a)
        _set_requires_grad([self.D], True)
        self.opt_d.zero_grad()
        loss_d = 0.5 * (_bce(self.D(torch.cat([a, fake.detach()], 1)), 0.0) + _bce(self.D(torch.cat([a, b], 1)), 1.0))
        loss_d.backward()
        self.opt_d.step()
        _set_requires_grad([self.D], False)
        self.opt_g.zero_grad()
        loss_g = _bce(self.D(torch.cat([a, fake], 1)), 1.0) + self.lambda_l1 * F.l1_loss(fake, b)
        loss_g.backward()
        self.opt_g.step()


class _Pool:
    def __init__(self, size=50):
        self.size, self.images = size, []

    def query(self, images):
        out = []
        for img in images.detach():
            img = img.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(img)
                out.append(img)
            elif random.random() > 0.5:
                j = random.randrange(self.size)
                out.append(self.images[j].clone())
                self.images[j] = img
            else:
                out.append(img)
        return torch.cat(out, 0)


class CycleGANBaseline:
    def __init__(self, variant, batch, lambda_cycle=10.0, lambda_idt=0.5):
        self.G_A, self.G_B = deepcopy_fp32(variant.G_A), deepcopy_fp32(variant.G_B)
        self.D_A, self.D_B = deepcopy_fp32(variant.D_A), deepcopy_fp32(variant.D_B)
        self.a, self.b = batch["a"].float().contiguous(), batch["b"].float().contiguous()
        self.opt_g = _adam(list(self.G_A.parameters()) + list(self.G_B.parameters()))
        self.opt_d = _adam(list(self.D_A.parameters()) + list(self.D_B.parameters()))
        self.pool_a, self.pool_b = _Pool(), _Pool()
        self.lc, self.li = lambda_cycle, lambda_idt

    @staticmethod
    def _mse(logits, target):
        return F.mse_loss(logits, torch.full_like(logits, target))

    def step(self):
        a, b = self.a, self.b
        fake_b = self.G_A(a)
        rec_a = self.G_B(fake_b)
        fake_a = self.G_B(b)
        rec_b = self.G_A(fake_a)
        _set_requires_grad([self.D_A, self.D_B], False)
        self.opt_g.zero_grad()
        idt_a, idt_b = self.G_A(b), self.G_B(a)
        loss_idt = (F.l1_loss(idt_a, b) * self.lc + F.l1_loss(idt_b, a) * self.lc) * self.li
        loss_gan = self._mse(self.D_A(fake_b), 1.0) + self._mse(self.D_B(fake_a), 1.0)
        loss_cycle = F.l1_loss(rec_a, a) * self.lc + F.l1_loss(rec_b, b) * self.lc
        (loss_gan + loss_cycle + loss_idt).backward()
        self.opt_g.step()
        _set_requires_grad([self.D_A, self.D_B], True)
        self.opt_d.zero_grad()
        for D, real, fake in ((self.D_A, b, self.pool_b.query(fake_b)), (self.D_B, a, self.pool_a.query(fake_a))):
            loss = 0.5 * (self._mse(D(real), 1.0) + self._mse(D(fake.detach()), 0.0))
            loss.backward()
        self.opt_d.step()


BASELINES = {"dcgan": DCGANBaseline, "pix2pix": Pix2PixBaseline, "cyclegan": CycleGANBaseline}


def param_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def baseline_ratio(name: str, size: str = "standard", device: str = "cpu", rounds: int = 5) -> dict[str, Any]:
    """ganzoo's default step against the plain-PyTorch loop of :data:`BASELINES` on the same networks, timed in
    alternating rounds in one process so both see the same machine state; a row of ``ganzoo.bench.ratio_table``."""
    trainer, batch = prepare(name, size, device)
    ref = BASELINES[name](trainer.variant, batch)
    params = {m: param_count(getattr(ref, m)) for m in ("G", "D", "G_A", "G_B", "D_A", "D_B") if hasattr(ref, m)}
    for m, n in params.items():
        if param_count(getattr(trainer.variant, m)) != n:
            raise AssertionError(
                f"baseline {m} has {n} parameters, ganzoo's {param_count(getattr(trainer.variant, m))}"
            )
    dev = trainer.device
    for _ in range(2):
        trainer.train_step(batch)
        ref.step()
    ours: list[float] = []
    theirs: list[float] = []
    for _ in range(rounds):
        theirs += median_ms(ref.step, dev, 1, 0)
        ours += median_ms(lambda: trainer.train_step(batch), dev, 1, 0)
    b, o = statistics.median(theirs), statistics.median(ours)
    return {
        "name": name,
        "size": size,
        "device": str(dev),
        "batch_size": trainer.batch_size,
        "ganzoo_precision": str(trainer.dtype).replace("torch.", ""),
        "ganzoo_channels_last": trainer.channels_last,
        "baseline_ms": b,
        "ganzoo_ms": o,
        "speedup": b / o,
        "params": params,
        "rounds": rounds,
    }
