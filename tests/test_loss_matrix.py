"""Every registered variant trains with every registered loss it accepts, and refuses the others by name."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import ganzoo
from ganzoo import registry
from ganzoo.losses import get_loss, loss_names
from ganzoo.testing import tiny_variant
from ganzoo.train.data import build_dataset, first_items, to_device
from ganzoo.train.trainer import TrainConfig, Trainer

VARIANTS = ganzoo.list_variants(tags=False)
LOSSES = loss_names()


def _quiet_config(**kw) -> TrainConfig:
    """A CPU fp32 training config that writes no checkpoints, samples or logs beyond what the test reads."""
    base = dict(
        device="cpu", precision="fp32", ckpt_every=0, sample_every=0, progress=False, tensorboard=False, num_workers=0
    )
    return TrainConfig(**{**base, **kw})


def _accepts(variant: str, loss: str) -> bool:
    provides = registry.resolve(variant)[0].cls.Config.loss_provides
    return get_loss(loss).requires <= provides


_batches: dict[str, dict] = {}


def _batch(name: str, v) -> dict:
    # One small batch per variant, built once: the data is not what this file tests.
    if name not in _batches:
        ds = build_dataset(v.default_data, v)
        v.prepare_data(ds)
        _batches[name] = (ds, first_items(ds, v.batch_size))
    ds, batch = _batches[name]
    v.prepare_data(ds)
    return batch


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("variant", VARIANTS)
def test_variant_trains_with_every_loss_it_accepts(variant, loss, tmp_path):
    if not _accepts(variant, loss):
        with pytest.raises(ganzoo.ConfigError, match=f"loss '{loss}' cannot be used"):
            tiny_variant(variant, loss=loss)
        return
    torch.manual_seed(0)
    v = tiny_variant(variant, loss=loss)
    t = Trainer(v, _quiet_config(steps=8, ema_decay=0.0), out=tmp_path)
    batch = _batch(variant, v)
    t._setup()
    batch = to_device(batch, t.device, t.channels_last)
    stages = t.stages
    earlier = sum(s.steps or 0 for s in stages[:-1])
    for _ in range(earlier):
        t.train_step(batch)
    last = stages[-1]
    before = {ph.name: [p.detach().clone() for p in t.phase_params[ph.name]] for ph in last.phases}
    for _ in range(2):
        out = t.train_step(batch)
        for k, val in out.items():
            assert math.isfinite(val.item()), f"{variant} with {loss}: {k} = {val.item()}"
    for ph in last.phases:
        changed = any(not torch.equal(a, p) for a, p in zip(before[ph.name], t.phase_params[ph.name]))
        assert changed, f"{variant} with {loss}: phase {ph.name} left its parameters unchanged"


def test_some_combination_is_refused():
    # The matrix above checks refusals where they happen; make sure it covers at least one.
    assert any(not _accepts(v, loss) for v in VARIANTS for loss in LOSSES)
    assert not _accepts("attngan", "rpgan")


def test_attngan_discriminator_loss_keeps_its_value():
    """AttnGAN's D loss, now written with d(real, fake) only, equals its separable form
    (real_c + real_u) / 2 + (fake_c + fake_u + wrong) / 3 per stage, computed here in float64."""
    terms = {
        "standard": (lambda r: F.softplus(-r).mean(), lambda f: F.softplus(f).mean()),
        "hinge": (lambda r: F.relu(1 - r).mean(), lambda f: F.relu(1 + f).mean()),
        "lsgan": (lambda r: (r - 1).square().mean(), lambda f: f.square().mean()),
    }
    for loss, (on_real, on_fake) in terms.items():
        torch.manual_seed(0)
        v = tiny_variant("attngan", loss=loss)
        batch = _batch("attngan", v)
        batch = to_device(batch, torch.device("cpu"))
        state = ganzoo.StepState(step=5, stage="gan")
        got = v.loss("d", batch, state)["loss"].item()
        words, sent, mask = state.cache["text"]
        fakes = state.cache["fake"][0]
        want = 0.0
        with torch.no_grad():
            for d, x, f in zip(v.D, v._reals(batch["image"]), fakes):
                hr, hf = d.features_of(x), d.features_of(f)
                real_c, real_u = d.logits(hr, sent).double(), d.logits(hr, None).double()
                fake_c, fake_u = d.logits(hf, sent).double(), d.logits(hf, None).double()
                wrong = d.logits(hr[:-1], sent[1:]).double()
                want += ((on_real(real_c) + on_real(real_u)) / 2).item()
                want += ((on_fake(fake_c) + on_fake(fake_u) + on_fake(wrong)) / 3).item()
        assert got == pytest.approx(want, rel=1e-5), loss


def test_dcgan_trains_with_r1_and_r2(tmp_path):
    v = tiny_variant("dcgan", loss="rpgan", r1_gamma=1.0, r2_gamma=1.0, r1_every=1)
    t = Trainer(v, _quiet_config(steps=2, log_every=1), out=tmp_path)
    batch = _batch("dcgan", v)
    t._setup()
    batch = to_device(batch, t.device, t.channels_last)
    d_before = [p.detach().clone() for p in v.D.parameters()]
    out = t.train_step(batch)
    assert {"d_r1/r1", "d_r2/r2"} <= set(out)
    assert out["d_r2/r2"].item() > 0 and math.isfinite(out["d_r2/loss"].item())
    assert any(not torch.equal(a, p) for a, p in zip(d_before, v.D.parameters()))


def test_r2_gamma_is_validated():
    with pytest.raises(ganzoo.ConfigError, match="r2_gamma"):
        ganzoo.create("dcgan", r2_gamma=-1.0)
