"""Discriminator rejection sampling (``ganzoo.rejection``) and the vanilla GAN's ``sampler=drs``: the calibration's
bound and shift (or exact rejection), acceptance that follows the density ratio, reproducible filtered latents, the
logistic fine-tuning, the Fourier critic that resolves modes finer than a smooth discriminator, and trained 2D models
whose rejected samples score better than their plain ones."""

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


def test_a_shift_of_zero_is_exact_rejection():
    logits = torch.linspace(-6.0, 1.5, 301)
    cal = drs.calibrate(logits, 80.0, gamma=0.0)
    assert cal.gamma == 0.0 and cal.percentile is None and cal.log_m == pytest.approx(1.5)
    want = torch.exp(logits.double() - 1.5).float()  # keep with the ratio over its bound
    torch.testing.assert_close(drs.acceptance_probability(logits, cal), want, rtol=1e-4, atol=1e-6)
    assert cal.acceptance == pytest.approx(float(want.double().mean()), rel=1e-4)
    assert drs.DRSCalibration.from_dict(cal.to_dict()) == cal
    with pytest.raises(ConfigError, match="finite.*inf"):
        drs.calibrate(logits, 50.0, gamma=float("inf"))


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


def _tight_modes(k: int, g: torch.Generator, std: float) -> torch.Tensor:
    """Points around the four corners (+-2, +-2), ``std`` wide."""
    centres = torch.tensor([[2.0, 2.0], [2.0, -2.0], [-2.0, 2.0], [-2.0, -2.0]])
    return centres[torch.randint(4, (k,), generator=g)] + std * torch.randn(k, 2, generator=g)


def test_the_fourier_critic_learns_a_ratio_that_exact_rejection_turns_into_the_data():
    """Data: four modes 0.05 wide; proposals: the same modes 0.25 wide (the tails a generator leaves). The critic,
    trained as the end of a run trains it, keeps proposals in the modes' cores: the share within 3 deviations of a
    centre rises from about a fifth to nearly all, while a smooth MLP of the same training rises far less."""
    g = torch.Generator().manual_seed(0)

    def real(k):
        return _tight_modes(k, g, 0.05)

    def fake(k):
        return _tight_modes(k, g, 0.25)

    def core_share(x):
        centres = torch.tensor([[2.0, 2.0], [2.0, -2.0], [-2.0, 2.0], [-2.0, -2.0]])
        return (torch.cdist(x, centres).min(1).values < 0.15).float().mean().item()

    def rejected(net):
        with torch.no_grad():
            cal = drs.calibrate(net(fake(10_000)), 50.0, gamma=0.0)
            z = drs.rejection_latents(
                lambda k, s: fake(k), lambda x: drs.acceptance_probability(net(x), cal), 2000, cal, seed=0
            )
        return core_share(z), cal

    torch.manual_seed(0)
    critic = drs.FourierCritic(2)
    critic.fit_scale(real(10_000))
    assert critic.shift.abs().max() < 0.1 and critic.scale.min() > 1.9  # the data's mean 0 and deviation 2
    critic.reset(3)
    first = critic.net[0].weight.clone()
    critic.reset(3)
    assert torch.equal(first, critic.net[0].weight)  # reproducible from the seed
    drs.finetune_discriminator(critic, real, fake, 400, 256, drs.CRITIC_LR, (0.9, 0.999), 0.5)
    smooth = torch.nn.Sequential(
        torch.nn.Linear(2, 64), torch.nn.ReLU(), torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 1)
    )
    smooth_net = torch.nn.Sequential(smooth, torch.nn.Flatten(0))
    drs.finetune_discriminator(smooth_net, real, fake, 400, 256, drs.CRITIC_LR, (0.9, 0.999), 0.5)

    plain = core_share(fake(10_000))
    with_critic, cal = rejected(critic)
    with_smooth, _ = rejected(smooth_net)
    assert plain < 0.35 and with_critic > 0.9 and with_critic > with_smooth + 0.1, (plain, with_critic, with_smooth)
    assert cal.acceptance < 0.5  # exact rejection pays in proposals


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
    with pytest.raises(ConfigError, match="drs_finetune >= 1"):
        ganzoo.create("vanilla.grid25", drs_finetune=0).config.validate()
    with pytest.raises(ConfigError, match="drs_gamma: cannot read nan"):
        ganzoo.create("vanilla.ring8", drs_gamma=float("nan")).config.validate()
    with pytest.raises(ConfigError, match=r"vector samples.*\(B, 3, 64, 64\).*'discriminator'"):
        ganzoo.create("dcgan", sampler="drs", drs_critic="fourier", drs_finetune=5)
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


def test_the_grid_recipe_trains_its_critic_and_saves_it(tmp_path):
    """The grid's tag, shortened: the critic is trained at the end, saved with the model, and read back by rejection;
    the training checkpoint holds the untrained critic and no calibration."""
    torch.manual_seed(0)
    v = ganzoo.create("vanilla.grid25", batch_size=32, drs_finetune=30)
    cfg = TrainConfig(steps=20, device="cpu", progress=False, tensorboard=False, sample_every=0, seed=0)
    Trainer(v, cfg, out=tmp_path).fit()
    model = ganzoo.load(tmp_path / "model.safetensors")
    assert isinstance(model.ratio_net(), drs.FourierCritic) and model.drs_calibration == v.drs_calibration
    assert model.drs_calibration.gamma == 0.0 and model.drs_calibration.percentile is None
    assert model.critic.scale.min() > 1.0  # standardized by the grid's deviation (about 2.8)
    x = 3 * torch.randn(300, 2, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(model.critic(x), v.critic(x))  # the trained critic, saved and read back
    p = model.acceptance_probability(torch.randn(300, 2))
    assert p.std() > 0.3 * p.mean() > 0  # a real comparison of latents, not a constant
    checkpoint = ganzoo.load(tmp_path, ema=False)
    assert checkpoint.drs_calibration is None
    assert not torch.equal(checkpoint.critic.net[0].weight, model.critic.net[0].weight)


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
