"""Discriminator rejection sampling (DRS; Azadi et al. 2019, "Discriminator Rejection Sampling").

A trained discriminator knows where the generator puts mass that the data does not: for the logistic loss the
optimal logit is ``log p_data(x) / p_g(x)``. Rejection sampling with that ratio turns samples of ``p_g`` into samples
of ``p_data`` wherever ``p_g`` covers the data; a generator that is continuous in its latent cannot leave empty the
space between separated modes, so this removes exactly what training converges on slowest (the "bridges" between
the modes of a mixture).

With the logit bound ``log M`` (the largest logit on a calibration draw) and ``d = logit - log M``, exact rejection
accepts with probability ``exp(d)``. DRS accepts with ``sigmoid(F - gamma)`` where
``F = d - log(1 - exp(d - eps))``: near the bound it accepts almost surely, and far below it the probability is
``exp(d - gamma)``, exact rejection scaled by ``exp(-gamma)`` (a negative shift keeps more proposals at some cost in
fidelity). The shift ``gamma`` is the ``percentile`` of ``F`` over the calibration draw (a higher percentile rejects
more). Logits above the calibration bound are clipped to it.

The discriminator of a finished run was trained against the raw generator, not against its weight average (EMA)
that is exported, and under the training loss rather than the logistic one whose optimum is the ratio:
:func:`finetune_discriminator` trains it a little longer against the generator actually sampled (the paper's
fine-tuning step). A discriminator shaped by the GAN's training (its regularizers, its capacity) may still be too
smooth to resolve the ratio at the scale of the data's modes; for vector data a fresh classifier on random Fourier
features of the sample (:class:`FourierCritic`, ``drs_critic="fourier"``) is trained for the rejection alone
instead. With a ratio that good, exact rejection (``gamma = 0``: ``sigmoid(F) = exp(d)``) samples the data, at the
cost of more proposals per sample. Variants hold a :class:`DRSCalibration` with their model and filter their latent
prior with :func:`rejection_latents`, so that ``generate(z=noise(n, seed=s))`` stays ``generate(n, seed=s)``.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import Tensor, nn
from torch.utils.data import default_collate

from .config import help, require
from .errors import ConfigError
from .losses import get_loss
from .schedules import final_decay

if TYPE_CHECKING:
    from .export_onnx import InferenceGraph
    from .variant import TrainInfo

__all__ = [
    "DRSCalibration",
    "DRSOptions",
    "FourierCritic",
    "RejectionSampling",
    "acceptance_probability",
    "calibrate",
    "finetune_discriminator",
    "refresh_batch_norm",
    "rejection_latents",
]

EPS = 1e-6
"""The paper's epsilon inside ``log(1 - exp(d - eps))``: keeps ``F`` finite at the bound."""
CALIBRATION_DRAW = 10_000
"""Proposals whose logits set the bound and the shift (the paper's burn-in)."""
MAX_PROPOSALS_PER_SAMPLE = 1000
"""A sampler that needs more proposals than this per accepted sample is broken, not unlucky: stop with an error."""
SCORE_CHUNK = 16_384
"""Proposals scored per forward pass of the generator and the critic (bounds the memory of a low acceptance)."""
CRITIC_BATCH = 256
CRITIC_LR = 1e-3
"""The Fourier critic's training: real and generated samples per step and Adam's rate (decaying linearly to 0 over the
second half of its steps)."""


@dataclass(frozen=True)
class DRSCalibration:
    """What rejection needs besides the discriminator: the logit bound, the shift and how they were set.

    :param log_m: the largest discriminator logit on the calibration draw.
    :param gamma: the shift of ``F``; ``percentile`` of ``F`` over the calibration draw, or fixed (0: exact
        rejection).
    :param percentile: the percentile (0-100) that set ``gamma``; ``None`` when ``gamma`` was given.
    :param acceptance: the expected fraction of proposals accepted (mean acceptance probability on the draw).
    :param draw: the calibration draw's size.
    """

    log_m: float
    gamma: float
    percentile: float | None
    acceptance: float
    draw: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DRSCalibration:
        return cls(**{k: data[k] for k in ("log_m", "gamma", "percentile", "acceptance", "draw")})


def _shifted_f(logits: Tensor, log_m: float | Tensor) -> Tensor:
    d = (logits.double() - log_m).clamp(max=0.0)
    return d - torch.log1p(-torch.exp(d - EPS))


def acceptance_probability(logits: Tensor, calibration: DRSCalibration) -> Tensor:
    """The probability of keeping each proposal, ``sigmoid(F(logit) - gamma)``, as float32 of ``logits``' shape."""
    return torch.sigmoid(_shifted_f(logits, calibration.log_m) - calibration.gamma).float()


def calibrate(logits: Tensor, percentile: float, gamma: float | None = None) -> DRSCalibration:
    """The bound and the shift from the logits of a calibration draw of proposals.

    :param logits: the discriminator's logits on the draw (any shape; at least one value).
    :param percentile: 0-100; ``gamma`` is this percentile of ``F`` (0: the smallest ``F``, which keeps the most).
    :param gamma: a fixed shift instead of the percentile's (0: exact rejection, keep with ``exp(logit - log M)``).
    :raises ConfigError: for a percentile outside [0, 100], a shift that is not finite or logits that are not finite.
    """
    if gamma is None and not 0 <= percentile <= 100:
        raise ConfigError(f"the DRS percentile must be in [0, 100], got {percentile}")
    if gamma is not None and not math.isfinite(gamma):
        raise ConfigError(f"the DRS shift gamma must be finite, got {gamma}")
    flat = logits.detach().double().flatten().cpu()
    if flat.numel() == 0 or not bool(torch.isfinite(flat).all()):
        raise ConfigError("DRS calibration needs finite discriminator logits; the discriminator has diverged")
    log_m = float(flat.max())
    f = _shifted_f(flat, log_m)
    shift = float(torch.quantile(f, percentile / 100.0)) if gamma is None else float(gamma)
    acceptance = float(torch.sigmoid(f - shift).mean())
    return DRSCalibration(
        log_m=log_m,
        gamma=shift,
        percentile=float(percentile) if gamma is None else None,
        acceptance=acceptance,
        draw=len(flat),
    )


def rejection_latents(
    propose: Callable[[int, int | None], Tensor],
    accept: Callable[[Tensor], Tensor],
    n: int,
    calibration: DRSCalibration,
    seed: int | None = None,
) -> Tensor:
    """``n`` latents that pass rejection, in the order they were proposed.

    :param propose: ``propose(k, seed)`` draws ``k`` latents from the prior (reproducibly when ``seed`` is given).
    :param accept: the acceptance probability of each latent, ``(k,)`` (generator, discriminator and
        :func:`acceptance_probability`).
    :param n: how many to return.
    :param calibration: the model's calibration; its ``acceptance`` sizes the rounds.
    :param seed: makes the result reproducible: round ``r`` proposes with a seed derived from ``seed`` and ``r``
        and draws its uniforms from another; ``None`` uses the global generator.
    :raises RuntimeError: when more than :data:`MAX_PROPOSALS_PER_SAMPLE` proposals per sample were needed.
    """
    kept: list[Tensor] = []
    have, proposed, rnd = 0, 0, 0
    rate = max(calibration.acceptance, 1e-3)
    while have < n:
        k = max(64, math.ceil(1.25 * (n - have) / rate))
        round_seed = None if seed is None else (seed * 7919 + rnd) % (2**63)
        z = propose(k, round_seed)
        u_gen = torch.Generator().manual_seed(round_seed + 1) if round_seed is not None else None
        u = torch.rand(k, generator=u_gen)
        keep = z[u < accept(z).cpu()]
        kept.append(keep[: n - have])
        have += min(len(keep), n - have)
        proposed += k
        rnd += 1
        if proposed > MAX_PROPOSALS_PER_SAMPLE * max(n, 1) and have < n:
            raise RuntimeError(
                f"discriminator rejection sampling accepted {have} of {proposed} proposals (expected "
                f"{calibration.acceptance:.1%}); the calibration does not fit this model"
            )
    return torch.cat(kept) if kept else propose(0, seed)


def finetune_discriminator(
    D: nn.Module,
    real: Callable[[int], Tensor],
    fake: Callable[[int], Tensor],
    steps: int,
    batch_size: int,
    lr: float = 1e-4,
    betas: tuple[float, float] = (0.5, 0.999),
    decay: float = 0.0,
) -> float:
    """Train ``D`` (the discriminator, or a :class:`FourierCritic`) alone under the logistic (standard GAN) loss,
    whose optimal logit is the density ratio.

    :param D: the classifier; its parameters are updated in place.
    :param real: ``real(k)`` returns ``k`` data samples on D's device.
    :param fake: ``fake(k)`` returns ``k`` samples of the generator that will be sampled (no gradient needed).
    :param steps: the number of Adam steps.
    :param batch_size: real and fake samples per step.
    :param lr: Adam's rate.
    :param betas: Adam's betas.
    :param decay: the final fraction of the steps over which the rate decays linearly to 0 (0: constant).
    :returns: the mean loss over the last tenth of the steps (``nan`` for 0 steps).
    """
    loss_fn = get_loss("standard")
    was_training = D.training
    D.train()  # batch norm normalizes real and fake batches apart, as in training
    params = list(D.parameters())
    flags = [p.requires_grad for p in params]  # the trainer freezes a network outside its phase
    opt = torch.optim.Adam(params, lr=lr, betas=betas)
    tail: list[float] = []
    for p in params:
        p.requires_grad_(True)
    with torch.enable_grad():
        for i in range(steps):
            for group in opt.param_groups:
                group["lr"] = lr * final_decay(i, steps, decay)
            with torch.no_grad():
                x_fake = fake(batch_size)
            loss = loss_fn.d(real=D(real(batch_size)), fake=D(x_fake))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if i >= steps - max(1, steps // 10):
                tail.append(float(loss.detach()))
    for p, flag in zip(params, flags):
        p.grad = None
        p.requires_grad_(flag)
    D.train(was_training)
    return sum(tail) / len(tail) if tail else float("nan")


@torch.no_grad()
def refresh_batch_norm(D: nn.Module, fake: Callable[[int], Tensor], batches: int, batch_size: int) -> bool:
    """Re-estimate the running statistics of ``D``'s batch-norm layers on generated samples only.

    In training, batch norm in a discriminator normalizes each batch (all real or all generated) by its own
    statistics, and its running averages mix both kinds; in eval mode those averages give logits that fit neither.
    Rejection scores generated samples only, so their statistics are the ones to evaluate with.

    :returns: whether ``D`` has batch norm (nothing is changed otherwise).
    """
    norms = [m for m in D.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not norms:
        return False
    was_training = D.training
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the batches below
    D.train()
    for _ in range(batches):
        D(fake(batch_size))
    for m, momentum in zip(norms, saved):
        m.momentum = momentum
    D.train(was_training)
    return True


class FourierCritic(nn.Module):
    """A classifier of data against generated samples for vector data, whose logit estimates ``log p_data / p_g``.

    The sample is standardized by the data's mean and deviation (:meth:`fit_scale`), mapped to ``features`` random
    Fourier features ``sin(x B), cos(x B)`` (Tancik et al. 2020: they let an MLP resolve detail far finer than
    its inputs' range) with ``B ~ N(0, bandwidth^2)`` fixed at construction, and read by an MLP of two hidden ReLU
    layers of ``hidden`` units beside ``x`` itself. On the 25-Gaussian grid (modes 0.05 wide, about 1/57 of the
    data's deviation of 2.8) a bandwidth of 7 separates the modes' cores from the tails a generator leaves around
    them, which the GAN's smoother discriminator does not (docs/variants/vanilla.md, with 14 and 20 beside it).

    ``forward(x)`` takes samples ``(B, d)`` and returns ``(B,)`` logits.

    :param dim: the sample's size ``d``.
    :param features: the number of random frequencies (each gives a sine and a cosine).
    :param bandwidth: the deviation of the frequencies, in units of the data's deviation.
    :param hidden: the width of the MLP's two hidden layers.
    """

    def __init__(self, dim: int, features: int = 128, bandwidth: float = 7.0, hidden: int = 256):
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        self.register_buffer("shift", torch.zeros(dim))
        self.register_buffer("scale", torch.ones(dim))
        self.register_buffer("freqs", torch.randn(dim, features, generator=gen) * bandwidth)
        self.net = nn.Sequential(
            nn.Linear(dim + 2 * features, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        x = (x.float() - self.shift) / self.scale
        proj = x @ self.freqs
        return self.net(torch.cat([x, torch.sin(proj), torch.cos(proj)], dim=1)).squeeze(1)

    @torch.no_grad()
    def fit_scale(self, real: Tensor) -> None:
        """Standardize by the mean and deviation of a draw of data ``(N, d)`` (a deviation of 0 counts as 1)."""
        self.shift.copy_(real.float().mean(0))
        std = real.float().std(0)
        self.scale.copy_(torch.where(std > 0, std, torch.ones_like(std)))

    def reset(self, seed: int) -> None:
        """Fresh weights for the MLP, drawn reproducibly from ``seed`` (the features and the scale are kept)."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            for layer in self.net:
                if isinstance(layer, nn.Linear):
                    layer.reset_parameters()


@dataclass
class DRSOptions:
    """The config fields of a variant that offers discriminator rejection sampling (a mixin of its config
    dataclass, before :class:`ganzoo.variant_config.GANConfig` in the bases)."""

    sampler: Literal["plain", "drs"] = help(
        "plain: decode the latent prior; drs: discriminator rejection sampling, calibrated at the end of training "
        "(ganzoo.rejection)",
        "plain",
    )
    drs_percentile: float = help("drs: the percentile of F over the calibration draw that sets gamma (0-100)", 50.0)
    drs_gamma: float | None = help(
        "drs: a fixed shift gamma instead of drs_percentile's (0: exact rejection, keep with p_data/p_g over its "
        "bound)",
        None,
    )
    drs_critic: Literal["discriminator", "fourier"] = help(
        "drs: the classifier whose logit estimates log p_data/p_g: the GAN's discriminator, or a fresh MLP on random "
        "Fourier features of vector samples (ganzoo.rejection.FourierCritic) trained for the rejection alone",
        "discriminator",
    )
    drs_finetune: int = help(
        "drs: steps against the exported (EMA) generator before calibrating, under the logistic loss: the "
        "discriminator's fine-tuning (Adam 1e-4), or the Fourier critic's training (Adam 1e-3, batch 256)",
        0,
    )

    def validate(self) -> None:
        super().validate()  # type: ignore[misc]
        if not 0 <= self.drs_percentile <= 100:
            raise ConfigError(f"drs_percentile must be in [0, 100], got {self.drs_percentile}")
        require(self, non_negative=("drs_finetune",))
        if self.sampler == "drs" and self.drs_critic == "fourier" and self.drs_finetune < 1:
            raise ConfigError(
                "drs_critic 'fourier' is trained for drs_finetune steps at the end of training; set drs_finetune >= 1"
            )
        if self.sampler == "drs" and getattr(self, "pack", 1) != 1:
            raise ConfigError(f"sampler 'drs' needs one discriminator logit per sample (pack 1), got pack {self.pack}")
        if self.sampler == "drs" and getattr(self, "num_classes", 0):
            raise ConfigError("sampler 'drs' is for unconditional models; this one has classes (num_classes > 0)")


class RejectionSampling:
    """Discriminator rejection sampling for a noise model: a mixin of a :class:`ganzoo.GANVariant` (first in its
    bases) whose config mixes in :class:`DRSOptions`.

    The variant provides networks ``G(z)`` and ``D(x)`` (``(B,)`` logits) and :meth:`prior`, and calls
    :meth:`add_rejection_critic` with its sample shape once it has built them; the mixin provides ``noise`` (the
    prior, filtered once the model is calibrated), :meth:`acceptance_probability`, the calibration in
    ``on_train_end`` (with the fine-tuning or the critic's training, and the batch-norm refresh), its saving in
    ``extra_metadata`` and the ``acceptance`` ONNX graph (:meth:`acceptance_graphs`).
    """

    drs_calibration: DRSCalibration | None = None
    """Set by the calibration at the end of a ``sampler=drs`` run and saved with the model; ``None`` samples
    plainly (and a user may set it to ``None`` to see the plain generator)."""

    # ---- what the variant provides ------------------------------------------------------------------------------
    # Networks ``G`` (``G(z)``: samples) and ``D`` (``D(x)``: ``(B,)`` logits), a config with DRSOptions and
    # ``batch_size``, and:
    def prior(self, n: int, *, seed: int | None = None, truncation: float | None = None) -> Tensor:
        """``n`` latents of the plain prior on the CPU (what ``noise`` returns without rejection)."""
        raise NotImplementedError

    # ---- what the mixin provides ----------------------------------------------------------------------------------
    def add_rejection_critic(self, sample_shape: tuple[int, ...]) -> None:
        """Build the :class:`FourierCritic` (as ``self.critic``, saved with the model) when the config asks for it.

        :param sample_shape: the shape of one generated sample, without the batch dimension.
        :raises ConfigError: when ``drs_critic="fourier"`` and the samples are not vectors.
        """
        c = self.config  # type: ignore[attr-defined]
        if c.sampler != "drs" or c.drs_critic != "fourier":
            return
        if len(sample_shape) != 1:
            raise ConfigError(
                f"drs_critic 'fourier' is for vector samples (B, d); this model makes samples of shape "
                f"(B, {', '.join(map(str, sample_shape))}): use drs_critic 'discriminator'"
            )
        self.critic = FourierCritic(sample_shape[0])

    def ratio_net(self) -> nn.Module:
        """The network whose logit rejection reads: the Fourier critic when the model has one, else ``D``."""
        critic = self._modules.get("critic")  # type: ignore[attr-defined]
        return critic if critic is not None else self.D  # type: ignore[attr-defined]

    def noise(self, n: int, *, seed: int | None = None, truncation: float | None = None) -> Tensor:
        """Latents of the prior (:meth:`prior`); once calibrated, only those that pass rejection
        (:func:`rejection_latents`), so that ``generate(n=n, seed=s)`` and ``generate(z=noise(n, seed=s))`` sample
        the filtered distribution alike."""
        if self.drs_calibration is None:
            return self.prior(n, seed=seed, truncation=truncation)

        def propose(k: int, s: int | None) -> Tensor:
            return self.prior(k, seed=s, truncation=truncation)

        return rejection_latents(propose, self.acceptance_probability, n, self.drs_calibration, seed)

    @torch.no_grad()
    def acceptance_probability(self, z: Tensor) -> Tensor:
        """``(B,)`` probability that rejection keeps each latent of ``z`` (a calibrated model only), on the CPU; the
        latents are decoded and scored :data:`SCORE_CHUNK` at a time."""
        if self.drs_calibration is None:
            raise ConfigError("this model has no DRS calibration: train it with --set sampler=drs")
        net = self.ratio_net()
        logits = [net(self.G(part.to(self.device))).float().cpu() for part in z.split(SCORE_CHUNK)]
        return acceptance_probability(torch.cat(logits) if logits else z.new_zeros(0), self.drs_calibration)

    def on_train_end(self, info: TrainInfo) -> None:
        """``sampler=drs``: ``drs_finetune`` D-only steps against the exported generator and the batch-norm refresh of
        D on its samples (or, with ``drs_critic="fourier"``, the critic trained afresh for ``drs_finetune`` steps),
        then the calibration on :data:`CALIBRATION_DRAW` proposals, all seeded by the run's seed."""
        super().on_train_end(info)  # type: ignore[misc]
        c = self.config
        if c.sampler != "drs":
            return
        from .data.base import get_items
        from .train.data import to_device

        gen = torch.Generator().manual_seed(info.seed)
        data = info.dataset

        def real(k: int) -> Tensor:
            idx = torch.randint(len(data), (k,), generator=gen).tolist()
            return to_device(default_collate(get_items(data, idx)), info.device)["image"]

        def fake(k: int) -> Tensor:
            return self.G(self.prior(k, seed=int(torch.randint(2**62, (1,), generator=gen))).to(info.device))

        net = self.ratio_net()
        if net is not self.D:
            net.reset(info.seed)
            net.fit_scale(torch.cat([real(k) for k in _chunks(CALIBRATION_DRAW, 1000)]))
            finetune_discriminator(net, real, fake, c.drs_finetune, CRITIC_BATCH, CRITIC_LR, (0.9, 0.999), 0.5)
        elif c.drs_finetune:
            finetune_discriminator(self.D, real, fake, c.drs_finetune, c.batch_size)
        with torch.no_grad():
            if net is self.D:
                refresh_batch_norm(self.D, fake, 50, c.batch_size)
            logits = torch.cat([net(fake(k)).float().cpu() for k in _chunks(CALIBRATION_DRAW, 1000)])
        self.drs_calibration = calibrate(logits, c.drs_percentile, c.drs_gamma)
        if info.main and info.verbose:
            print(
                f"ganzoo: {self.name}: discriminator rejection sampling calibrated on {CALIBRATION_DRAW:,} proposals "
                f"(keeps {self.drs_calibration.acceptance:.1%})",
                file=sys.stderr,
            )

    def extra_metadata(self) -> dict[str, Any]:
        out = dict(super().extra_metadata())  # type: ignore[misc]
        if self.drs_calibration is not None:
            out["drs"] = self.drs_calibration.to_dict()
        return out

    def load_extra_metadata(self, data: dict[str, Any]) -> None:
        super().load_extra_metadata(data)  # type: ignore[misc]
        self.drs_calibration = DRSCalibration.from_dict(data["drs"]) if "drs" in data else None

    def acceptance_graphs(self, z: Tensor) -> list[InferenceGraph]:
        """The ``acceptance`` graph (``z`` -> ``p``) of a calibrated model, else none; ``z`` is an example latent
        batch."""
        from .export_onnx import InferenceGraph, InferenceNet

        cal = self.drs_calibration
        if cal is None:
            return []
        shape = ", ".join(str(d) for d in z.shape[1:])
        return [
            InferenceGraph(
                "acceptance",
                InferenceNet(
                    lambda nets, z: acceptance_probability(nets.R(nets.G(z)), cal), G=self.G, R=self.ratio_net()
                ),
                (z,),
                ("z",),
                ("p",),
                {"z": {0: "batch"}, "p": {0: "batch"}},
                description=f"z: (B, {shape}) standard normal noise -> p: (B,), the probability that discriminator "
                "rejection sampling keeps z (keep z when a uniform draw is below p; decode it with the generator "
                "graph)",
                metadata={"drs": json.dumps(cal.to_dict())},
            )
        ]


def _chunks(n: int, size: int) -> list[int]:
    return [min(size, n - i) for i in range(0, n, size)]
