"""Discriminator rejection sampling (``ganzoo.rejection``) and the vanilla GAN's ``sampler=drs``: the calibration's
bound and shift, acceptance that follows the density ratio, reproducible filtered latents, the logistic fine-tuning,
and a trained 2D model whose rejected samples score better than its plain ones."""

from __future__ import annotations

import math

import pytest
import torch

import ganzoo
from ganzoo import rejection as drs
from ganzoo.errors import ConfigError
from ganzoo.metrics.builtin import modes_2d_metric
from ganzoo.train import TrainConfig, Trainer


def _normal_log_ratio(x: torch.Tensor, mean: float, std: float) -> torch.Tensor:
    """log N(x; mean, std) - log N(x; 0, 1), the optimal logit for data N(mean, std) against a N(0, 1) generator."""
    return -0.5 * ((x - mean) / std) ** 2 - math.log(std) + 0.5 * x**2


def test_calibration_sets_the_bound_and_the_shift():
    logits = torch.linspace(-5.0, 2.0, 1001)
    cal = drs.calibrate(logits, 80.0)
    assert cal.log_m == pytest.approx(2.0) and cal.percentile == 80.0 and cal.draw == 1001
    p = drs.acceptance_probability(logits, cal)
    # gamma is the 80th percentile of F, so the top fifth is accepted with probability at least 1/2.
    assert (p >= 0.5).float().mean().item() == pytest.approx(0.2, abs=0.01)
    assert torch.all(p[1:] >= p[:-1])  # monotone in the logit
    assert cal.acceptance == pytest.approx(float(p.double().mean()), abs=1e-6)
    # A logit above the bound counts as the bound.
    assert drs.acceptance_probability(torch.tensor([9.0]), cal).item() == pytest.approx(p[-1].item())
    keep_most = drs.calibrate(logits, 0.0)
    assert keep_most.acceptance > cal.acceptance and bool((drs.acceptance_probability(logits, keep_most) >= 0.5).all())
    assert drs.DRSCalibration.from_dict(cal.to_dict()) == cal


@pytest.mark.parametrize("bad", [torch.tensor([0.0, float("nan")]), torch.tensor([])])
def test_calibration_refuses_what_cannot_be_calibrated(bad):
    with pytest.raises(ConfigError, match="finite"):
        drs.calibrate(bad, 50.0)
    with pytest.raises(ConfigError, match=r"\[0, 100\].*101"):
        drs.calibrate(torch.zeros(3), 101.0)


def test_rejection_with_the_true_ratio_samples_the_target():
    """Proposals N(0, 1), logit log N(1, 0.5) / N(0, 1): the accepted samples have the target's mean and spread."""

    def prior(k, seed):
        return (
            torch.randn(k, 1, generator=torch.Generator().manual_seed(seed)) if seed is not None else torch.randn(k, 1)
        )

    cal = drs.calibrate(_normal_log_ratio(prior(10_000, 0), 1.0, 0.5).flatten(), 80.0)

    def accept(z):
        return drs.acceptance_probability(_normal_log_ratio(z, 1.0, 0.5).flatten(), cal)

    z = drs.rejection_latents(prior, accept, 4000, cal, seed=3)
    assert z.shape == (4000, 1)
    assert abs(z.mean().item() - 1.0) < 0.06 and abs(z.std().item() - 0.5) < 0.06
    assert torch.equal(z, drs.rejection_latents(prior, accept, 4000, cal, seed=3))  # reproducible
    assert not torch.equal(z, drs.rejection_latents(prior, accept, 4000, cal, seed=4))
    with pytest.raises(RuntimeError, match="accepted 0 of"):
        drs.rejection_latents(prior, lambda z: torch.zeros(len(z)), 5, cal, seed=0)


def test_finetuning_learns_the_density_ratio_and_restores_the_flags():
    torch.manual_seed(0)
    D = torch.nn.Sequential(torch.nn.Linear(1, 32), torch.nn.ReLU(), torch.nn.Linear(32, 1), torch.nn.Flatten(0))
    for p in D.parameters():
        p.requires_grad_(False)  # as the trainer leaves a network outside its phase
    g = torch.Generator().manual_seed(1)
    loss = drs.finetune_discriminator(
        D,
        lambda k: 1.0 + 0.5 * torch.randn(k, 1, generator=g),
        lambda k: torch.randn(k, 1, generator=g),
        1500,
        256,
        3e-3,
    )
    assert loss < 2 * math.log(2) - 0.2  # the sum of the two terms; 2 log 2 at chance
    assert all(not p.requires_grad and p.grad is None for p in D.parameters())
    x = torch.linspace(-1.0, 2.5, 50)[:, None]
    with torch.no_grad():
        got, want = D(x), _normal_log_ratio(x, 1.0, 0.5).flatten()
    assert torch.corrcoef(torch.stack([got, want]))[0, 1] > 0.95


def test_batch_norm_statistics_are_re_estimated_on_generated_samples():
    D = torch.nn.Sequential(torch.nn.BatchNorm1d(1), torch.nn.Linear(1, 1), torch.nn.Flatten(0)).eval()
    g = torch.Generator().manual_seed(0)
    assert drs.refresh_batch_norm(D, lambda k: 3.0 + 2.0 * torch.randn(k, 1, generator=g), 40, 256)
    bn = D[0]
    assert bn.running_mean.item() == pytest.approx(3.0, abs=0.05) and bn.running_var.item() == pytest.approx(
        4.0, rel=0.05
    )
    assert bn.momentum == 0.1 and not D.training  # restored
    assert not drs.refresh_batch_norm(torch.nn.Linear(1, 1), lambda k: torch.zeros(k, 1), 2, 4)  # nothing to refresh


def test_drs_options_are_checked():
    for bad, match in (
        ({"drs_percentile": 120.0}, "drs_percentile"),
        ({"drs_finetune": -1}, "drs_finetune"),
        ({"pack": 2}, "pack 1"),
        ({"sampler": "best"}, "'best' is not one of 'plain', 'drs'"),
    ):
        with pytest.raises(ConfigError, match=match):
            ganzoo.create("vanilla.ring8", **bad).config.validate()
    with pytest.raises(ConfigError, match="unconditional"):
        ganzoo.create("dcgan.cond", sampler="drs").config.validate()
    plain = ganzoo.create("vanilla.ring8", sampler="plain")
    with pytest.raises(ConfigError, match="sampler=drs"):
        plain.acceptance_probability(torch.zeros(2, 2))


@pytest.fixture(scope="module")
def ring_run(tmp_path_factory):
    """The ring recipe, shortened to 1,000 steps (its decay and EMA scaled with it), trained with DRS."""
    out = tmp_path_factory.mktemp("drs_ring")
    torch.manual_seed(0)
    v = ganzoo.create("vanilla.ring8", drs_finetune=200)
    cfg = TrainConfig(steps=1000, device="cpu", progress=False, tensorboard=False, sample_every=0, seed=0)
    Trainer(v, cfg, out=out).fit()
    return out


def test_a_trained_drs_model_samples_better_than_its_plain_generator(ring_run):
    model = ganzoo.load(ring_run / "model.safetensors")
    cal = model.drs_calibration
    assert cal is not None and 0.05 < cal.acceptance < 0.95 and cal.draw == drs.CALIBRATION_DRAW
    z = model.noise(2500, seed=1)
    filtered = modes_2d_metric(model.generate(z=z), data="ring8")
    assert torch.equal(model.generate(n=2500, seed=1), model.generate(z=z))  # the LatentGenerator contract
    model.drs_calibration = None
    plain = modes_2d_metric(model.generate(n=2500, seed=1), data="ring8")
    assert filtered["high_quality"] > plain["high_quality"] + 0.05, (filtered, plain)
    # The kept latents are those the discriminator rates above the rest.
    model.drs_calibration = cal
    assert model.acceptance_probability(z).mean() > model.acceptance_probability(torch.randn(2500, 2)).mean()


def test_dcgan_calibrates_at_the_end_of_training(tmp_path):
    from ganzoo.testing import tiny_variant

    torch.manual_seed(0)
    v = tiny_variant("dcgan", sampler="drs", drs_finetune=2)
    cfg = TrainConfig(steps=2, device="cpu", progress=False, tensorboard=False, sample_every=0)
    Trainer(v, cfg, out=tmp_path).fit()
    model = ganzoo.load(tmp_path / "model.safetensors")
    assert model.drs_calibration == v.drs_calibration and model.drs_calibration.draw == drs.CALIBRATION_DRAW
    z = model.noise(6, seed=2)
    assert z.shape == (6, model.config.nz, 1, 1) and torch.equal(model.generate(n=6, seed=2), model.generate(z=z))
    # The checkpoint holds the training state: no calibration, and the discriminator before its fine-tuning.
    checkpoint = ganzoo.load(tmp_path, ema=False)
    assert checkpoint.drs_calibration is None
