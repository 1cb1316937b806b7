"""Each adversarial loss against a float64 formula, including extreme logits, and the regularizers."""

import math

import pytest
import torch
import torch.nn.functional as F

import ganzoo
from ganzoo.losses import (
    G_REAL,
    PAIRED,
    AdversarialLoss,
    get_loss,
    gradient_penalty,
    loss_names,
    r1_penalty,
    r2_penalty,
)


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
    # Relativistic losses as in the papers, D(x) = sigmoid(C(x) - C(y)): -log of a probability of "more real".
    if name == "rpgan":
        return -log_d(r - f).mean(), -log_d(f - r).mean()
    if name == "ragan":
        d = -log_d(r - f.mean()).mean() - log_1md(f - r.mean()).mean()
        g = -log_d(f - r.mean()).mean() - log_1md(r - f.mean()).mean()
        return d, g
    raise AssertionError(name)


BUILTIN = ["standard", "minimax", "lsgan", "hinge", "wgan", "rpgan", "ragan"]


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
    d_got = loss.d(real=real, fake=fake)
    g_got = loss.g(real=real, fake=fake)
    assert torch.isfinite(d_got) and torch.isfinite(g_got)
    assert d_got.item() == pytest.approx(d_want.item(), rel=1e-5, abs=1e-5)
    assert g_got.item() == pytest.approx(g_want.item(), rel=1e-5, abs=1e-5)


@pytest.mark.parametrize("name", ["standard", "minimax"])
def test_extreme_logits_stay_finite_with_useful_gradients(name):
    # A confident discriminator (logit -100 on fakes) is where a naive log(1 - sigmoid) saturates to 0 or -inf.
    fake = torch.full((4,), -100.0, requires_grad=True)
    loss = get_loss(name).g(real=None, fake=fake)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(fake.grad).all()
    if name == "standard":  # non-saturating: the generator still gets a gradient of about -1/N per sample
        assert fake.grad.abs().min().item() == pytest.approx(0.25, rel=1e-3)
        assert loss.item() == pytest.approx(100.0, rel=1e-6)


def test_bf16_logits_are_computed_in_float32():
    logits = torch.randn(64).bfloat16()
    for name in BUILTIN:
        assert get_loss(name).d(real=logits, fake=logits).dtype == torch.float32
        assert get_loss(name).g(real=logits, fake=logits).dtype == torch.float32


def test_declared_requirements():
    for name in ["standard", "minimax", "lsgan", "hinge", "wgan"]:
        assert get_loss(name).requires == frozenset()
        # They never read the real logits in G's loss, so a variant may pass None and skip that D forward.
        assert get_loss(name).real_logits_for_g(lambda: pytest.fail("D evaluated for nothing")) is None
    assert get_loss("rpgan").requires == {G_REAL, PAIRED}
    assert get_loss("ragan").requires == {G_REAL}


def test_g_real_logits_are_constant_for_the_generator():
    w = torch.ones(3, requires_grad=True)
    logits = get_loss("ragan").real_logits_for_g(lambda: torch.randn(4, 3) @ w)
    assert logits is not None and not logits.requires_grad


def test_relativistic_losses_check_their_inputs():
    with pytest.raises(ValueError, match="same shape|item by item"):
        get_loss("rpgan").d(real=torch.zeros(4), fake=torch.zeros(3))
    for name in ("rpgan", "ragan"):
        with pytest.raises(ValueError, match="real logits"):
            get_loss(name).g(real=None, fake=torch.zeros(4))


def test_ragan_accepts_unequal_batches():
    # Only means of the other side enter, so D may see more negatives than positives (AttnGAN's wrong captions).
    real, fake = torch.randn(5).double(), torch.randn(3).double()
    want, _ = reference("ragan", real, fake)
    assert get_loss("ragan").d(real=real, fake=fake).item() == pytest.approx(want.item(), rel=1e-6)


def test_r1_penalty_matches_analytic_gradient():
    # D(x) = sum(w * x): grad_x = w for every sample, so R1 = ||w||^2.
    w = torch.tensor([1.0, -2.0, 3.0])
    x = torch.randn(5, 3, requires_grad=True)
    assert r1_penalty((x * w).sum(1), x).item() == pytest.approx(14.0)


def test_r2_penalty_matches_analytic_gradient():
    # D(x) = sum(x^2): grad_x = 2x, so R2 = E[4 ||x||^2] on the generated samples.
    x = torch.randn(6, 4, requires_grad=True)
    penalty = r2_penalty(x.square().sum(1), x)
    assert penalty.item() == pytest.approx(4 * x.detach().square().sum(1).mean().item(), rel=1e-6)
    penalty.backward()  # the penalty itself is differentiable (create_graph), as a D update needs
    assert torch.isfinite(x.grad).all()


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


class Softplus2:
    """A plugin's loss written against the contract alone (no ganzoo base class needed): BCE at twice the scale."""

    name = "softplus2"
    requires = frozenset()

    def d(self, real, fake):
        return F.softplus(-2 * real).mean() + F.softplus(2 * fake).mean()

    def g(self, real, fake):
        return F.softplus(-2 * fake).mean()


class NeedsPairs(AdversarialLoss):
    """A relativistic pairing variant that only variants providing pairs can use."""

    name = "pairs2"
    requires = frozenset({G_REAL, PAIRED})

    def d(self, real, fake):
        return F.softplus(2 * (fake - real)).mean()

    def g(self, real, fake):
        return F.softplus(2 * (real - fake)).mean()


@pytest.fixture
def plugin_losses():
    from ganzoo import hookimpl
    from ganzoo.plugins import register_plugin, unregister_plugin

    class Plugin:
        @hookimpl
        def ganzoo_register_losses(self, register):
            register("softplus2", Softplus2())
            register("pairs2", NeedsPairs)

    register_plugin(Plugin(), "extra-loss")
    try:
        yield
    finally:
        unregister_plugin("extra-loss")


def test_plugin_loss_is_selectable_and_trains(plugin_losses, tmp_path):
    from ganzoo.testing import tiny_variant

    assert {"softplus2", "pairs2"} <= set(loss_names())
    v = ganzoo.create("dcgan", loss="softplus2", image_size=32, ngf=8, ndf=8)
    assert v.adv.d(real=torch.zeros(2), fake=torch.zeros(2)).item() == pytest.approx(2 * math.log(2))
    v = tiny_variant("dcgan", loss="pairs2")
    before = [p.detach().clone() for p in v.parameters()]
    cfg = ganzoo.TrainConfig(
        steps=2,
        device="cpu",
        precision="fp32",
        log_every=1,
        sample_every=0,
        ckpt_every=0,
        progress=False,
        tensorboard=False,
        num_workers=0,
    )
    ganzoo.Trainer(v, cfg, out=tmp_path).fit()
    assert any(not torch.equal(a, b) for a, b in zip(before, v.parameters()))


def test_loss_a_variant_cannot_use_is_refused_by_name(plugin_losses):
    # AttnGAN's matching-aware D has no pairs to offer: the refusal comes from create(), before any training.
    with pytest.raises(ganzoo.ConfigError) as err:
        ganzoo.create("attngan", loss="pairs2")
    msg = str(err.value)
    assert "'pairs2' cannot be used by attngan" in msg and "paired" in msg and "same shape" in msg
    accepted = msg.split("accepts:")[1]
    assert "softplus2" in accepted and "ragan" in accepted and "pairs2" not in accepted and "rpgan" not in accepted


def test_loss_with_unknown_requirement_is_refused(plugin_losses, monkeypatch):
    monkeypatch.setattr(NeedsPairs, "requires", frozenset({"telepathy"}))
    with pytest.raises(ganzoo.ConfigError, match="telepathy"):
        ganzoo.create("dcgan", loss="pairs2")
