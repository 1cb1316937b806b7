"""Adversarial losses, regularizers and reconstruction losses shared by every variant.

Adversarial losses work on raw discriminator *logits* and are written with ``softplus`` so extreme logits neither
overflow nor lose precision: with ``D = sigmoid(l)``, ``-log D = softplus(-l)`` and ``-log(1 - D) = softplus(l)``.

Every variant selects its adversarial loss by name (``loss="standard"``) through :func:`get_loss`; third parties
add more with the ``ganzoo_register_losses`` hook.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor


class AdversarialLoss:
    """A GAN objective. ``d_real``/``d_fake`` are the discriminator's terms on real and generated logits (their sum
    is the usual ``L_D``); ``g`` is the generator's loss on the logits of its samples."""

    name = ""

    def d_real(self, logits: Tensor) -> Tensor:
        raise NotImplementedError

    def d_fake(self, logits: Tensor) -> Tensor:
        raise NotImplementedError

    def g(self, logits: Tensor) -> Tensor:
        raise NotImplementedError

    def d(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        return self.d_real(real_logits) + self.d_fake(fake_logits)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class StandardLoss(AdversarialLoss):
    """Goodfellow et al. 2014 with the non-saturating generator:
    ``L_D = -E[log D(x)] - E[log(1 - D(G(z)))]``, ``L_G = -E[log D(G(z))]``."""

    name = "standard"

    def d_real(self, logits: Tensor) -> Tensor:
        return F.softplus(-logits.float()).mean()

    def d_fake(self, logits: Tensor) -> Tensor:
        return F.softplus(logits.float()).mean()

    def g(self, logits: Tensor) -> Tensor:
        return F.softplus(-logits.float()).mean()


class MinimaxLoss(StandardLoss):
    """The original minimax game: the generator minimizes ``E[log(1 - D(G(z)))]`` (saturates early in training)."""

    name = "minimax"

    def g(self, logits: Tensor) -> Tensor:
        return -F.softplus(logits.float()).mean()


class LSGANLoss(AdversarialLoss):
    """Least squares GAN (Mao et al. 2017) with targets 1 for real and 0 for fake, as CycleGAN uses it."""

    name = "lsgan"

    def d_real(self, logits: Tensor) -> Tensor:
        return (logits.float() - 1).square().mean()

    def d_fake(self, logits: Tensor) -> Tensor:
        return logits.float().square().mean()

    def g(self, logits: Tensor) -> Tensor:
        return (logits.float() - 1).square().mean()


class HingeLoss(AdversarialLoss):
    """Hinge loss (Lim & Ye 2017; SAGAN, BigGAN): ``L_D = E[relu(1 - D(x))] + E[relu(1 + D(G(z)))]``,
    ``L_G = -E[D(G(z))]``."""

    name = "hinge"

    def d_real(self, logits: Tensor) -> Tensor:
        return F.relu(1 - logits.float()).mean()

    def d_fake(self, logits: Tensor) -> Tensor:
        return F.relu(1 + logits.float()).mean()

    def g(self, logits: Tensor) -> Tensor:
        return -logits.float().mean()


class WGANLoss(AdversarialLoss):
    """Wasserstein critic loss (Arjovsky et al. 2017); pair it with ``gradient_penalty`` (WGAN-GP)."""

    name = "wgan"

    def d_real(self, logits: Tensor) -> Tensor:
        return -logits.float().mean()

    def d_fake(self, logits: Tensor) -> Tensor:
        return logits.float().mean()

    def g(self, logits: Tensor) -> Tensor:
        return -logits.float().mean()


BUILTIN_LOSSES: tuple[type[AdversarialLoss], ...] = (StandardLoss, MinimaxLoss, LSGANLoss, HingeLoss, WGANLoss)


def get_loss(name: str) -> AdversarialLoss:
    """The adversarial loss registered under ``name`` (built-in or from a plugin)."""
    from . import registry

    obj = registry.get("loss", name).obj
    return obj() if isinstance(obj, type) or (callable(obj) and not isinstance(obj, AdversarialLoss)) else obj


def loss_names() -> list[str]:
    from . import registry

    return sorted(registry.losses())


def check_loss_name(name: str) -> None:
    """Raise the did-you-mean error for an unregistered loss name (for configs' ``validate()``)."""
    from . import registry

    registry.get("loss", name)


# ---- regularizers ---------------------------------------------------------------------------------------------------
# Both need the gradient of D's output with respect to its input, kept in the graph (create_graph) so the penalty
# itself can be differentiated: a double backward, which is why the trainer runs these phases without torch.compile.


def r1_penalty(real_logits: Tensor, real_inputs: Tensor) -> Tensor:
    """R1 (Mescheder et al. 2018): ``E[||grad_x D(x)||^2]`` on real data. Multiply by ``gamma / 2`` as the paper
    does. ``real_inputs`` must have ``requires_grad=True`` before ``real_logits`` were computed from it."""
    (grad,) = torch.autograd.grad(real_logits.float().sum(), real_inputs, create_graph=True)
    return grad.float().square().flatten(1).sum(1).mean()


def gradient_penalty(critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor, target: float = 1.0) -> Tensor:
    """WGAN-GP (Gulrajani et al. 2017): ``E[(||grad D(x_hat)|| - 1)^2]`` on random interpolates of real and fake.
    Multiply by lambda (10 in the paper)."""
    alpha = torch.rand((real.shape[0],) + (1,) * (real.dim() - 1), device=real.device, dtype=real.dtype)
    x_hat = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    out = critic(x_hat)
    (grad,) = torch.autograd.grad(out.float().sum(), x_hat, create_graph=True)
    norm = grad.float().flatten(1).norm(2, dim=1)
    return (norm - target).square().mean()


# ---- reconstruction -------------------------------------------------------------------------------------------------


def l1(a: Tensor, b: Tensor) -> Tensor:
    return (a.float() - b.float()).abs().mean()


def mse(a: Tensor, b: Tensor) -> Tensor:
    return (a.float() - b.float()).square().mean()
