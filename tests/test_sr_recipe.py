"""The SRGAN CPU recipe: the SRResNet-stage cosine schedule (``pretrain_lr_decay``) and the ``srgan.small`` tag."""

from __future__ import annotations

import json
import math
import shutil
import warnings
from pathlib import Path
from typing import Any

import pytest
from ganzoo_srgan.model import MSEContent

import ganzoo
from ganzoo.errors import ConfigError
from ganzoo.schedules import cosine_decay
from ganzoo.testing import check_variant, tiny_variant
from ganzoo.train import TrainConfig, Trainer
from ganzoo.train.checkpoint import checkpoint_path
from ganzoo.variant import Phase

G_MSE, D, G = Phase("g_mse", ("G",)), Phase("d", ("D",)), Phase("g", ("G",))


# ---- the schedule ------------------------------------------------------------------------------------------------


def test_cosine_decay_is_a_half_cosine_from_one_to_zero():
    assert cosine_decay(0, 10) == 1.0
    assert cosine_decay(5, 10) == pytest.approx(0.5)
    assert cosine_decay(10, 10) == 0.0 and cosine_decay(25, 10) == 0.0
    assert cosine_decay(2, 8) == pytest.approx((1 + math.cos(math.pi / 4)) / 2)
    # Every step of the span trains at a positive rate; the rate only falls.
    values = [cosine_decay(s, 10) for s in range(11)]
    assert all(v > 0 for v in values[:-1]) and all(a > b for a, b in zip(values, values[1:]))
    # An offset span: flat before it, the same curve shifted.
    assert cosine_decay(3, 10, start=7) == 1.0 and cosine_decay(12, 10, start=7) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="at least 1"):
        cosine_decay(0, 0)


def test_cosine_pretrain_factor_at_start_middle_and_end_of_the_stage():
    v = ganzoo.create("srgan", pretrain_steps=100, pretrain_lr_decay="cosine")
    assert v.lr_factor(G_MSE, 0, 300) == 1.0
    assert v.lr_factor(G_MSE, 50, 300) == pytest.approx(0.5)
    last = v.lr_factor(G_MSE, 99, 300)
    assert 0 < last < 1e-3
    # The curve follows the resolved stage length: 5/6 of --steps when pretrain_steps is unset.
    by_fraction = ganzoo.create("srgan", pretrain_lr_decay="cosine")
    assert [s.steps for s in by_fraction.stage_plan(1200)] == [1000, 200]
    assert by_fraction.lr_factor(G_MSE, 500, 1200) == pytest.approx(0.5)
    # The paper's schedule: a constant rate.
    assert all(ganzoo.create("srgan", pretrain_steps=100).lr_factor(G_MSE, s, 300) == 1.0 for s in (0, 50, 99))


def test_cosine_pretrain_decay_leaves_the_gan_stage_schedule_alone():
    cosine = ganzoo.create("srgan", pretrain_steps=100, gan_lr_decay_at=20, pretrain_lr_decay="cosine")
    paper = ganzoo.create("srgan", pretrain_steps=100, gan_lr_decay_at=20)
    for phase in (D, G):
        got = [cosine.lr_factor(phase, s, 300) for s in range(100, 300)]
        assert got == [paper.lr_factor(phase, s, 300) for s in range(100, 300)]
        # The GAN stage starts at the full rate after the decayed stage, and drops x0.1 where it always did.
        assert got[0] == 1.0 and got[19] == 1.0 and got[20] == 0.1


def test_srresnet_only_run_decays_over_the_whole_run():
    v = ganzoo.create("srgan.srresnet", pretrain_lr_decay="cosine")
    assert v.lr_factor(G_MSE, 0, 400) == 1.0 and v.lr_factor(G_MSE, 200, 400) == pytest.approx(0.5)
    # Resumed with a longer --steps, the curve stretches to the new end: the rate at the old end rises again.
    assert v.lr_factor(G_MSE, 399, 400) < 1e-4 and v.lr_factor(G_MSE, 400, 800) == pytest.approx(0.5)


def test_pretrain_fraction_sizes_the_stages_unless_pretrain_steps_is_set():
    assert [s.steps for s in ganzoo.create("srgan").stage_plan(1200)] == [1000, 200]
    assert [s.steps for s in ganzoo.create("srgan", pretrain_fraction=0.9).stage_plan(1000)] == [900, 100]
    pinned = ganzoo.create("srgan", pretrain_fraction=0.9, pretrain_steps=10)
    assert [s.steps for s in pinned.stage_plan(100)] == [10, 90]
    for bad in (0.0, 1.0, 1.5):
        with pytest.raises(ConfigError, match=r"pretrain_fraction must be in \(0, 1\), got"):
            ganzoo.create("srgan", pretrain_fraction=bad)
    with pytest.raises(ConfigError, match="pretrain_fraction"):
        ganzoo.create("srgan", pretrain_fraction=float("nan"))


def test_bad_pretrain_lr_decay_is_refused_naming_the_choices():
    with pytest.raises(ConfigError, match=r"pretrain_lr_decay must be one of none, cosine, got 'linear'") as e:
        ganzoo.create("srgan.small", pretrain_lr_decay="linear")
    assert "\n" not in str(e.value)


# ---- the tag -----------------------------------------------------------------------------------------------------


def test_small_tag_is_the_cpu_recipe():
    v = ganzoo.create("srgan.small")
    c = v.config
    assert (c.n_feats, c.n_blocks, c.lr_g, c.lr_d, c.image_size, c.batch_size) == (64, 8, 5e-4, 5e-4, 96, 16)
    assert c.pretrain_lr_decay == "cosine" and c.gan and c.scale == 4 and c.augment
    assert not c.batch_norm and c.pixel_loss == "l1"  # EDSR's choices, not the paper's
    assert v.default_steps == 5920
    assert [(s.name, s.steps) for s in v.stage_plan(v.default_steps)] == [("pretrain", 5820), ("gan", 100)]
    assert "sr-folder:DIR" in v.tag_descriptions["small"]
    # SRGAN-MSE on every machine: no VGG19 lookup, so no fallback warning and no dependence on a cached file.
    assert c.content_loss == "mse"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert isinstance(v.content, MSEContent)
    # The paper's defaults are untouched by the tag.
    assert ganzoo.create("srgan").config.pretrain_lr_decay == "none"
    assert ganzoo.create("srgan").default_steps is None


def test_small_tag_trains_both_stages_and_resumes_exactly_on_shapes_sr():
    # Three pretraining steps: the cosine takes values between 1 and 0 (the tiny preset has one).
    result = check_variant("srgan.small", data="shapes-sr", pretrain_steps=3)
    assert result["losses"]["stage"] == "gan" and "g/content" in result["losses"]


def _fit(name: str, out: Path, steps: int, resume: bool = False, **overrides: Any) -> list[dict[str, Any]]:
    cfg = TrainConfig(
        steps=steps, device="cpu", precision="fp32", log_every=1, sample_every=0, ckpt_every=1, keep=100,
        progress=False, tensorboard=False, num_workers=0,
    )  # fmt: skip
    v = tiny_variant(name, **overrides)
    Trainer(v, cfg, data="shapes-sr", out=out, resume=resume, variant_name=name).fit()
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


def test_trained_rates_follow_the_cosine_then_the_gan_schedule(tmp_path):
    records = _fit("srgan.small", tmp_path / "run", 6, pretrain_steps=4, gan_lr_decay_at=1)
    assert [r["stage"] for r in records] == ["pretrain"] * 4 + ["gan"] * 2
    for r in records[:4]:
        assert r["lr/g_mse"] == pytest.approx(5e-4 * cosine_decay(r["step"] - 1, 4))
    assert [r["lr/g"] for r in records[4:]] == pytest.approx([5e-4, 5e-5])
    assert [r["lr/d"] for r in records[4:]] == pytest.approx([5e-4, 5e-5])


def _resume_from(src_run: Path, step: int, out: Path) -> None:
    (out / "checkpoints").mkdir(parents=True)
    src = checkpoint_path(src_run / "checkpoints", step)
    shutil.copy2(src, out / "checkpoints" / src.name)


def test_resume_notes_a_schedule_change_by_the_run_s_own_settings(tmp_path, capsys):
    # 8 steps at a share of 0.75: 6 SRResNet steps under a cosine over 6, then 2 GAN steps. Resumed at step 3 with 10
    # steps and a share of 0.6, the SRResNet stage is still 6 steps and its cosine unchanged: nothing to note (the
    # run's rates are read under its own share, not the new one, which would have given 5 of 8).
    own = {"pretrain_steps": None, "gan_lr_decay_at": 100}
    straight = _fit("srgan.small", tmp_path / "straight", 8, pretrain_fraction=0.75, **own)
    _resume_from(tmp_path / "straight", 3, tmp_path / "kept")
    capsys.readouterr()
    kept = _fit("srgan.small", tmp_path / "kept", 10, resume=True, pretrain_fraction=0.6, **own)
    assert "learning-rate schedule" not in capsys.readouterr().err
    assert [r["lr/g_mse"] for r in kept[:3]] == [r["lr/g_mse"] for r in straight[3:6]]
    # SRResNet only, resumed mid-run with more steps: its cosine stretches, and the note gives the rates.
    _fit("srgan.srresnet", tmp_path / "mse", 8, pretrain_lr_decay="cosine")
    _resume_from(tmp_path / "mse", 3, tmp_path / "mse10")
    capsys.readouterr()
    _fit("srgan.srresnet", tmp_path / "mse10", 10, resume=True, pretrain_lr_decay="cosine")
    note = capsys.readouterr().err
    was, now = cosine_decay(3, 8), cosine_decay(3, 10)
    assert "--steps 10 (the run had 8) changes the learning-rate schedule" in note
    assert f"from step 3 phase 'g_mse' runs at x{now:.3g} of its rate" in note
    assert f"instead of x{was:.3g}; resume with --steps 8 to keep it" in note


def test_resume_with_more_steps_continues_the_curve_or_says_it_restarts(tmp_path, capsys):
    # The tag's SRResNet stage pinned (pretrain_steps, as the resume hint does): a run resumed mid-stage with more
    # --steps lengthens only the GAN stage and follows the first run's cosine, step for step.
    pin = {"pretrain_steps": 6, "gan_lr_decay_at": 100}
    straight = _fit("srgan.small", tmp_path / "straight", 8, **pin)
    (tmp_path / "longer" / "checkpoints").mkdir(parents=True)
    src = checkpoint_path(tmp_path / "straight" / "checkpoints", 3)
    shutil.copy2(src, tmp_path / "longer" / "checkpoints" / src.name)
    capsys.readouterr()
    longer = _fit("srgan.small", tmp_path / "longer", 12, resume=True, **pin)
    assert "learning-rate schedule" not in capsys.readouterr().err
    assert [r["step"] for r in longer] == list(range(4, 13))
    assert [r["lr/g_mse"] for r in longer[:3]] == [r["lr/g_mse"] for r in straight[3:6]]
    assert [r["lr/g_mse"] for r in longer[:3]] == pytest.approx([5e-4 * cosine_decay(s, 6) for s in (3, 4, 5)])
    assert [r["g_mse/loss"] for r in longer[:3]] == pytest.approx([r["g_mse/loss"] for r in straight[3:6]])
    assert [r["stage"] for r in longer] == ["pretrain"] * 3 + ["gan"] * 6
    # SRResNet only: the stage is the whole run, so a longer run stretches the curve and the trainer says so.
    _fit("srgan.srresnet", tmp_path / "mse", 2, pretrain_lr_decay="cosine")
    capsys.readouterr()
    records = _fit("srgan.srresnet", tmp_path / "mse", 4, resume=True, pretrain_lr_decay="cosine")
    assert "restarts the learning-rate schedule" in capsys.readouterr().err
    assert records[-2]["lr/g_mse"] == pytest.approx(1e-4 * cosine_decay(2, 4)) == pytest.approx(5e-5)
