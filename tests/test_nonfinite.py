"""Non-finite losses: steps are skipped on the device (no host sync), logged, and a run that keeps diverging
rolls back to its last checkpoint with a lower learning rate, or stops with a clear message."""

import json

import pytest
import torch

from ganzoo.testing import tiny_variant
from ganzoo.train import TrainConfig, Trainer, TrainingDiverged


def cfg(**kw):
    base = dict(device="cpu", precision="fp32", progress=False, tensorboard=False, n_samples=4, sample_every=0)
    base.update(kw)
    return TrainConfig(**base)


def poisoned(bad_steps, once=False):
    """A tiny vanilla GAN whose D loss is NaN at the given steps (``once``: only the first time a step is run, as a
    divergence that a rollback with a lower learning rate cures)."""
    v = tiny_variant("vanilla")
    orig = v.loss
    bad_steps = set(bad_steps)

    def loss(phase, batch, state):
        out = orig(phase, batch, state)
        if state.step in bad_steps and phase == "d":
            out["loss"] = out["loss"] * float("nan")
            if once:
                bad_steps.discard(state.step)
        return out

    v.loss = loss
    return v


def test_nan_step_is_skipped_and_logged(tmp_path):
    v = poisoned({2})
    t = Trainer(v, cfg(steps=4, log_every=4, ckpt_every=0), out=tmp_path)
    t.fit()
    rec = json.loads((tmp_path / "log.jsonl").read_text().splitlines()[-1])
    assert rec["skipped_steps"] == 1
    assert all(torch.isfinite(p).all() for p in t.variant.parameters())


def test_skipped_step_leaves_weights_and_moments_untouched(tmp_path):
    v = poisoned({1})
    t = Trainer(v, cfg(steps=1, log_every=1, ckpt_every=0), out=tmp_path)
    t._setup()
    from ganzoo.train.data import build_dataset, first_items, to_device

    ds = build_dataset("shapes", v)
    batch = to_device(first_items(ds, 4), t.device)
    t.train_step(batch)  # step 0: fine
    d_before = [p.detach().clone() for p in v.D.parameters()]
    m_before = [t.optimizers["d"].state[p]["exp_avg"].clone() for p in v.D.parameters()]
    out = t.train_step(batch)  # step 1: D loss NaN
    assert out["skipped"].item() == 1.0
    assert all(torch.equal(a, p) for a, p in zip(d_before, v.D.parameters()))
    assert all(torch.equal(a, t.optimizers["d"].state[p]["exp_avg"]) for a, p in zip(m_before, v.D.parameters()))
    assert t.optimizers["d"].state[next(v.D.parameters())]["step"].item() == 1  # the skipped step is not counted


def test_persistent_nans_roll_back_with_lower_lr(tmp_path):
    v = poisoned(range(4, 10), once=True)
    t = Trainer(v, cfg(steps=12, log_every=2, ckpt_every=2, max_skips=4), out=tmp_path)
    t.fit()
    assert t.lr_scale == 0.5
    assert t.step == 12
    assert all(torch.isfinite(p).all() for p in t.variant.parameters())


def test_persistent_nans_stop_with_clear_message(tmp_path):
    v = poisoned(set(range(2, 100)))
    t = Trainer(v, cfg(steps=20, log_every=2, ckpt_every=0, max_skips=4, on_nonfinite="stop"), out=tmp_path)
    with pytest.raises(TrainingDiverged, match="consecutive steps had non-finite"):
        t.fit()
