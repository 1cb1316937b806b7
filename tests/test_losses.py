"""Each adversarial loss against a float64 formula, including extreme logits, and the regularizers."""

import math

import pytest
import torch

import ganzoo
from ganzoo.losses import get_loss, gradient_penalty, loss_names, r1_penalty


def sigmoid64(x):
    return 1 / (1 + torch.exp(-x.double()))


def reference(name, real, fake):
    """Textbook formulas in float64 (probabilities via sigmoid; log(1 - D) written as log(sigmoid(-l)) so that the
    float64 reference itself stays finite at |logit| = 80)."""
    r, f = real.double(), fake.double()
    log_d = lambda l: torch.log(sigmoid64(l))  # noqa: E731
    log_1md = lambda l: torch.log(sigmoid64(-l))  # noqa: E731
    if name == "standard":
        return -(log_d(r).mean() + log_1md(f).mean()), -log_d(f).mean()
    if name == "minimax":
        return -(log_d(r).mean() + log_1md(f).mean()), log_1md(f).mean()
    if name == "lsgan":
        return ((r - 1) ** 2).mean() + (f**2).mean(), ((f - 1) ** 2).mean()
    if name == "hinge":
        return torch.clamp(1 - r, min=0).mean() + torch.clamp(1 + f, min=0).mean(), -f.mean()
    if name == "wgan":
        return -r.mean() + f.mean(), -f.mean()
    raise AssertionError(name)


BUILTIN = ["standard", "minimax", "lsgan", "hinge", "wgan"]


def test_builtin_losses_registered():
    assert set(BUILTIN) <= set(loss_names())


@pytest.mark.parametrize("name", BUILTIN)
@pytest.mark.parametrize("scale", [1.0, 10.0, 80.0])
def test_loss_matches_float64_formula(name, scale):
    g = torch.Generator().manual_seed(0)
    real = torch.randn(257, generator=g) * scale
    fake = torch.randn(257, generator=g) * scale
    loss = get_loss(name)
    d_want, g_want = reference(name, real, fake)
    d_got = loss.d(real, fake)
    g_got = loss.g(fake)
    assert torch.isfinite(d_got) and torch.isfinite(g_got)
    assert d_got.item() == pytest.approx(d_want.item(), rel=1e-5, abs=1e-5)
    assert g_got.item() == pytest.approx(g_want.item(), rel=1e-5, abs=1e-5)


@pytest.mark.parametrize("name", ["standard", "minimax"])
def test_extreme_logits_stay_finite_with_useful_gradients(name):
    # A confident discriminator (logit -100 on fakes) is where a naive log(1 - sigmoid) saturates to 0 or -inf.
    fake = torch.full((4,), -100.0, requires_grad=True)
    loss = get_loss(name).g(fake)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(fake.grad).all()
    if name == "standard":  # non-saturating: the generator still gets a gradient of about -1/N per sample
        assert fake.grad.abs().min().item() == pytest.approx(0.25, rel=1e-3)
        assert loss.item() == pytest.approx(100.0, rel=1e-6)


def test_bf16_logits_are_computed_in_float32():
    logits = torch.randn(64).bfloat16()
    for name in BUILTIN:
        assert get_loss(name).d(logits, logits).dtype == torch.float32


def test_r1_penalty_matches_analytic_gradient():
    # D(x) = sum(w * x): grad_x = w for every sample, so R1 = ||w||^2.
    w = torch.tensor([1.0, -2.0, 3.0])
    x = torch.randn(5, 3, requires_grad=True)
    assert r1_penalty((x * w).sum(1), x).item() == pytest.approx(14.0)


def test_gradient_penalty_zero_for_unit_norm_critic():
    w = torch.tensor([0.6, 0.8])  # ||w|| = 1: a 1-Lipschitz linear critic has zero penalty
    real, fake = torch.randn(8, 2), torch.randn(8, 2)
    assert gradient_penalty(lambda x: (x * w).sum(1), real, fake).item() == pytest.approx(0.0, abs=1e-10)
    gp = gradient_penalty(lambda x: (x * 3 * w).sum(1), real, fake)
    assert gp.item() == pytest.approx(4.0, rel=1e-6)  # (3 - 1)^2


def test_unknown_loss_is_a_clear_error():
    with pytest.raises(ganzoo.UnknownNameError, match="hinge"):
        get_loss("hinje")
    with pytest.raises(ganzoo.UnknownNameError, match="Did you mean 'hinge'"):
        ganzoo.create("dcgan", loss="hinje")


def test_plugin_loss_is_selectable(tmp_path):
    from ganzoo import hookimpl
    from ganzoo.losses import AdversarialLoss
    from ganzoo.plugins import register_plugin, unregister_plugin

    class Softplus2(AdversarialLoss):
        name = "softplus2"

        def d_real(self, l):
            return torch.nn.functional.softplus(-2 * l).mean()

        def d_fake(self, l):
            return torch.nn.functional.softplus(2 * l).mean()

        def g(self, l):
            return torch.nn.functional.softplus(-2 * l).mean()

    class Plugin:
        @hookimpl
        def ganzoo_register_losses(self, register):
            register("softplus2", Softplus2())

    register_plugin(Plugin(), "extra-loss")
    try:
        assert "softplus2" in loss_names()
        v = ganzoo.create("dcgan", loss="softplus2", image_size=32, ngf=8, ndf=8)
        assert v.adv.d(torch.zeros(2), torch.zeros(2)).item() == pytest.approx(2 * math.log(2))
    finally:
        unregister_plugin("extra-loss")
