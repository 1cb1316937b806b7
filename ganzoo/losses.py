"""Adversarial losses, regularizers and reconstruction losses shared by every variant.

The loss contract (see docs/losses.md): an :class:`AdversarialLoss` gives the discriminator's loss
``d(real=..., fake=...)`` and the generator's loss ``g(real=..., fake=...)``, both from raw discriminator *logits*
on real and on generated data. A loss declares in :attr:`AdversarialLoss.requires` what it needs beyond that (the
names in :data:`REQUIREMENTS`); a variant's config declares what the variant provides, and ``validate()`` refuses a
loss that needs more (:func:`check_loss`), so an unusable loss fails when the model is built, not at step 1.

The built-in losses are written with ``softplus`` so extreme logits neither overflow nor lose precision: with
``D = sigmoid(l)``, ``-log D = softplus(-l)`` and ``-log(1 - D) = softplus(l)``. Every variant selects its loss by
name (``loss="standard"``) through :func:`get_loss`; third parties add more with the ``ganzoo_register_losses`` hook.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from .errors import ConfigError

#: The discriminator's logits on real data are passed to ``g``: the variant evaluates D on real data in the
#: generator's phase (under ``torch.no_grad()``: they are constant with respect to G). Relativistic losses need it.
G_REAL = "g_real"
#: ``real`` and ``fake`` logits have the same shape and item ``i`` of one is compared with item ``i`` of the other
#: (the same condition or input where there is one). Pairing losses (RpGAN) need it.
PAIRED = "paired"

#: Every requirement name a loss may declare, with what the variant must do to provide it.
REQUIREMENTS: dict[str, str] = {
    G_REAL: "the discriminator's logits on real data in the generator's loss",
    PAIRED: "real and fake logits of the same shape, compared item by item",
}


class AdversarialLoss:
    """A GAN objective on discriminator logits: the one contract between losses and variants.

    A variant calls :meth:`d` in the discriminator's phase and :meth:`g` in the generator's phase, with keyword
    arguments ``real=`` (logits of D on real data) and ``fake=`` (logits of D on generated data). Logits have any
    shape (one per sample, or a patch map); the built-in losses average over every element. A variant passes
    ``real=None`` to :meth:`g` unless the loss declares :data:`G_REAL` in :attr:`requires`, so losses that do not
    need it cost no extra discriminator forward.

    Subclasses set :attr:`name` and :attr:`requires` and implement :meth:`d` and :meth:`g`; register an instance with
    the ``ganzoo_register_losses`` hook.
    """

    #: The registered name (``loss=`` in every variant config).
    name: ClassVar[str] = ""
    #: What the loss needs from a variant beyond real and fake logits in ``d``: names from :data:`REQUIREMENTS`.
    requires: ClassVar[frozenset[str]] = frozenset()

    def d(self, real: Tensor, fake: Tensor) -> Tensor:
        """The discriminator's loss.

        :param real: D's logits on real data.
        :param fake: D's logits on generated data (detached from G by the variant).
        :returns: a scalar to minimize, in float32 or wider.
        """
        raise NotImplementedError

    def g(self, real: Tensor | None, fake: Tensor) -> Tensor:
        """The generator's loss.

        :param real: D's logits on real data, constant with respect to G; ``None`` unless :attr:`requires` holds
            :data:`G_REAL`.
        :param fake: D's logits on generated data, differentiable with respect to G.
        :returns: a scalar to minimize, in float32 or wider.
        """
        raise NotImplementedError

    @property
    def needs_real_in_g(self) -> bool:
        """Whether :meth:`g` needs the real logits (:data:`G_REAL` in :attr:`requires`)."""
        return G_REAL in self.requires

    def real_logits_for_g(self, compute: Callable[[], Tensor]) -> Tensor | None:
        """The ``real=`` argument of :meth:`g`: ``compute()`` (D on real data) evaluated without a graph when the
        loss needs it, else ``None`` and D is not run. The logits are constant with respect to G, so no gradient
        is lost.

        :param compute: evaluates D on the real data of the step (with the same conditioning as the fakes).
        :returns: the real logits, or ``None``.
        """
        if not self.needs_real_in_g:
            return None
        with torch.no_grad():
            return compute()

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class SeparableLoss(AdversarialLoss):
    """A loss whose D part is a term on real logits plus a term on fake logits, and whose G part reads only the fake
    logits: the classic losses. Subclasses implement the three per-side terms."""

    def _real(self, logits: Tensor) -> Tensor:
        raise NotImplementedError

    def _fake(self, logits: Tensor) -> Tensor:
        raise NotImplementedError

    def _gen(self, logits: Tensor) -> Tensor:
        raise NotImplementedError

    def d(self, real: Tensor, fake: Tensor) -> Tensor:
        return self._real(real) + self._fake(fake)

    def g(self, real: Tensor | None, fake: Tensor) -> Tensor:
        return self._gen(fake)


class StandardLoss(SeparableLoss):
    """Goodfellow et al. 2014 with the non-saturating generator:
    ``L_D = -E[log D(x)] - E[log(1 - D(G(z)))]``, ``L_G = -E[log D(G(z))]``."""

    name = "standard"

    def _real(self, logits: Tensor) -> Tensor:
        return F.softplus(-logits.float()).mean()

    def _fake(self, logits: Tensor) -> Tensor:
        return F.softplus(logits.float()).mean()

    def _gen(self, logits: Tensor) -> Tensor:
        return F.softplus(-logits.float()).mean()


class MinimaxLoss(StandardLoss):
    """The original minimax game: the generator minimizes ``E[log(1 - D(G(z)))]`` (saturates early in training)."""

    name = "minimax"

    def _gen(self, logits: Tensor) -> Tensor:
        return -F.softplus(logits.float()).mean()


class LSGANLoss(SeparableLoss):
    """Least squares GAN (Mao et al. 2017) with targets 1 for real and 0 for fake, as CycleGAN uses it."""

    name = "lsgan"

    def _real(self, logits: Tensor) -> Tensor:
        return (logits.float() - 1).square().mean()

    def _fake(self, logits: Tensor) -> Tensor:
        return logits.float().square().mean()

    def _gen(self, logits: Tensor) -> Tensor:
        return (logits.float() - 1).square().mean()


class HingeLoss(SeparableLoss):
    """Hinge loss (Lim & Ye 2017; SAGAN, BigGAN): ``L_D = E[relu(1 - D(x))] + E[relu(1 + D(G(z)))]``,
    ``L_G = -E[D(G(z))]``."""

    name = "hinge"

    def _real(self, logits: Tensor) -> Tensor:
        return F.relu(1 - logits.float()).mean()

    def _fake(self, logits: Tensor) -> Tensor:
        return F.relu(1 + logits.float()).mean()

    def _gen(self, logits: Tensor) -> Tensor:
        return -logits.float().mean()


class WGANLoss(SeparableLoss):
    """Wasserstein critic loss (Arjovsky et al. 2017); pair it with ``gradient_penalty`` (WGAN-GP)."""

    name = "wgan"

    def _real(self, logits: Tensor) -> Tensor:
        return -logits.float().mean()

    def _fake(self, logits: Tensor) -> Tensor:
        return logits.float().mean()

    def _gen(self, logits: Tensor) -> Tensor:
        return -logits.float().mean()


def _same_shape(loss: str, real: Tensor | None, fake: Tensor) -> Tensor:
    if real is None:
        raise ValueError(f"the {loss} generator loss needs the real logits (it declares {G_REAL!r})")
    if real.shape != fake.shape:
        raise ValueError(
            f"{loss} pairs real and fake logits item by item; got shapes {tuple(real.shape)} and {tuple(fake.shape)}"
        )
    return real


class RpGANLoss(AdversarialLoss):
    """Relativistic pairing GAN (Jolicoeur-Martineau 2019; R3GAN): ``L_D = E[softplus(-(D(x) - D(G(z))))]``,
    ``L_G = E[softplus(-(D(G(z)) - D(x)))]`` over pairs of real and generated samples."""

    name = "rpgan"
    requires = frozenset({G_REAL, PAIRED})

    def d(self, real: Tensor, fake: Tensor) -> Tensor:
        real = _same_shape(self.name, real, fake)
        return F.softplus(fake.float() - real.float()).mean()

    def g(self, real: Tensor | None, fake: Tensor) -> Tensor:
        real = _same_shape(self.name, real, fake)
        return F.softplus(real.float() - fake.float()).mean()


class RaGANLoss(AdversarialLoss):
    """Relativistic average GAN (Jolicoeur-Martineau 2019): each side is judged against the other side's mean,
    ``L_D = E[softplus(-(D(x) - mean D(G(z))))] + E[softplus(D(G(z)) - mean D(x))]``; ``L_G`` swaps real and fake."""

    name = "ragan"
    requires = frozenset({G_REAL})

    @staticmethod
    def _relative(pos: Tensor, neg: Tensor) -> Tensor:
        # ``pos`` should score above the mean of ``neg`` and ``neg`` below the mean of ``pos``.
        pos, neg = pos.float(), neg.float()
        return F.softplus(neg.mean() - pos).mean() + F.softplus(neg - pos.mean()).mean()

    def d(self, real: Tensor, fake: Tensor) -> Tensor:
        return self._relative(real, fake)

    def g(self, real: Tensor | None, fake: Tensor) -> Tensor:
        if real is None:
            raise ValueError(f"the {self.name} generator loss needs the real logits (it declares {G_REAL!r})")
        return self._relative(fake, real)


BUILTIN_LOSSES: tuple[type[AdversarialLoss], ...] = (
    StandardLoss,
    MinimaxLoss,
    LSGANLoss,
    HingeLoss,
    WGANLoss,
    RpGANLoss,
    RaGANLoss,
)


def _instance(obj: object) -> AdversarialLoss:
    return obj() if isinstance(obj, type) or (callable(obj) and not isinstance(obj, AdversarialLoss)) else obj


def get_loss(name: str) -> AdversarialLoss:
    """The adversarial loss registered under ``name`` (built-in or from a plugin).

    :raises ganzoo.UnknownNameError: no loss has that name (the message lists the registered ones).
    """
    from . import registry

    return _instance(registry.get("loss", name).obj)


def loss_names() -> list[str]:
    """Every registered loss name, sorted."""
    from . import registry

    return sorted(registry.losses())


def loss_requires(loss: AdversarialLoss) -> frozenset[str]:
    """What ``loss`` needs from a variant (its :attr:`AdversarialLoss.requires`, checked to be known names)."""
    req = frozenset(getattr(loss, "requires", frozenset()))
    unknown = sorted(req - REQUIREMENTS.keys())
    if unknown:
        raise ConfigError(
            f"loss {getattr(loss, 'name', '') or type(loss).__name__!r} requires unknown capabilities "
            f"{', '.join(unknown)}; known: {', '.join(sorted(REQUIREMENTS))}"
        )
    return req


def usable_losses(provides: Iterable[str]) -> list[str]:
    """The registered losses whose requirements are all in ``provides``, sorted."""
    have = frozenset(provides)
    return [n for n in loss_names() if loss_requires(get_loss(n)) <= have]


def check_loss(name: str, provides: Iterable[str], variant: str = "this variant") -> None:
    """Refuse, for a config's ``validate()``, a loss that is not registered or that needs what the variant does
    not provide.

    :param name: the ``loss`` config value.
    :param provides: the requirement names (:data:`REQUIREMENTS`) the variant provides.
    :param variant: how to name the variant in the message.
    :raises ganzoo.UnknownNameError: no loss is registered under ``name``.
    :raises ganzoo.ConfigError: the loss needs something the variant lacks; the message names the loss, what it
        needs and the losses the variant accepts.
    """
    have = frozenset(provides)
    missing = sorted(loss_requires(get_loss(name)) - have)
    if missing:
        needs = "; ".join(f"{m}: {REQUIREMENTS[m]}" for m in missing)
        raise ConfigError(
            f"loss {name!r} cannot be used by {variant}: it needs {needs}, which {variant} does not provide. "
            f"Losses {variant} accepts: {', '.join(usable_losses(have))}"
        )


# ---- regularizers ---------------------------------------------------------------------------------------------------
# Each needs the gradient of D's output with respect to its input, kept in the graph (create_graph) so the penalty
# itself can be differentiated: a double backward, which is why the trainer runs these phases without torch.compile.


def _input_grad_sq(logits: Tensor, inputs: Tensor) -> Tensor:
    (grad,) = torch.autograd.grad(logits.float().sum(), inputs, create_graph=True)
    return grad.float().square().flatten(1).sum(1).mean()


def r1_penalty(real_logits: Tensor, real_inputs: Tensor) -> Tensor:
    """R1 (Mescheder et al. 2018): ``E[||grad_x D(x)||^2]`` on real data. Multiply by ``gamma / 2`` as the paper
    does.

    :param real_logits: D's logits on ``real_inputs``.
    :param real_inputs: real samples with ``requires_grad=True`` set before ``real_logits`` were computed from them.
    :returns: the penalty, a scalar.
    """
    return _input_grad_sq(real_logits, real_inputs)


def r2_penalty(fake_logits: Tensor, fake_inputs: Tensor) -> Tensor:
    """R2 (Mescheder et al. 2018; with R1 in R3GAN): ``E[||grad_x D(x)||^2]`` on generated samples, the same
    conventions as :func:`r1_penalty` (multiply by ``gamma / 2``).

    :param fake_logits: D's logits on ``fake_inputs``.
    :param fake_inputs: generated samples, detached from G, with ``requires_grad=True`` set before ``fake_logits``
        were computed from them.
    :returns: the penalty, a scalar.
    """
    return _input_grad_sq(fake_logits, fake_inputs)


def gradient_penalty(critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor, target: float = 1.0) -> Tensor:
    """WGAN-GP (Gulrajani et al. 2017): ``E[(||grad D(x_hat)|| - 1)^2]`` on random interpolates of real and fake.
    Multiply by lambda (10 in the paper).

    :param critic: D as a function of its input (conditioning bound in).
    :param real: real samples.
    :param fake: generated samples (detached here).
    :param target: the gradient norm aimed at.
    :returns: the penalty, a scalar.
    """
    alpha = torch.rand((real.shape[0],) + (1,) * (real.dim() - 1), device=real.device, dtype=real.dtype)
    x_hat = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    out = critic(x_hat)
    (grad,) = torch.autograd.grad(out.float().sum(), x_hat, create_graph=True)
    norm = grad.float().flatten(1).norm(2, dim=1)
    return (norm - target).square().mean()


# ---- reconstruction -------------------------------------------------------------------------------------------------


def l1(a: Tensor, b: Tensor) -> Tensor:
    """Mean absolute difference, in float32."""
    return (a.float() - b.float()).abs().mean()


def mse(a: Tensor, b: Tensor) -> Tensor:
    """Mean squared difference, in float32."""
    return (a.float() - b.float()).square().mean()
