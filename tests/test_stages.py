"""Stages follow the budget: --steps is the total, stages get documented fractions of it unless their length is set,
a stage left with 0 steps is refused, and resume keeps the boundaries."""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass

import pytest
import torch
from ganzoo_vanilla.variant import VanillaConfig, VanillaGAN

import ganzoo
from ganzoo import Phase, Stage
from ganzoo.cli import main
from ganzoo.config import help
from ganzoo.errors import ConfigError
from ganzoo.plugins import register_plugin, unregister_plugin
from ganzoo.testing import check_variant, stage_steps, tiny_variant
from ganzoo.train import TrainConfig, Trainer
from ganzoo.train import checkpoint as ckpt
from ganzoo.variant import resolve_stages


def cfg(steps: int, **kw) -> TrainConfig:
    base = dict(
        steps=steps,
        device="cpu",
        precision="fp32",
        progress=False,
        tensorboard=False,
        num_workers=0,
        log_every=1,
        sample_every=0,
        ckpt_every=1,
        keep=100,
        n_samples=4,
    )
    base.update(kw)
    return TrainConfig(**base)


def plan(v, steps: int) -> list[tuple[str, int]]:
    return [(s.name, s.steps) for s in v.stage_plan(steps)]


def half_up(x: float) -> int:
    return math.floor(x + 0.5)


def stages_logged(out) -> list[str]:
    return [json.loads(line)["stage"] for line in (out / "log.jsonl").read_text().splitlines()]


# ---- a plugin variant with three stages, made here ------------------------------------------------------------------


@dataclass
class ThreeConfig(VanillaConfig):
    warm_steps: int | None = help("steps of the G-only warm-up stage; default: 0.2 of --steps", None)


class ThreeStageGAN(VanillaGAN):
    """Vanilla GAN trained in three stages: G alone, D alone, then both."""

    name = "test-three-stage"
    Config = ThreeConfig

    def stages(self) -> list[Stage]:
        c = self.config
        d, g = Phase("d", ("D",), c.lr_d), Phase("g", ("G",), c.lr_g)
        return [
            Stage("warm", (g,), steps=c.warm_steps, fraction=0.2, setting="warm_steps"),
            Stage("critic", (d,), fraction=0.3),
            Stage("gan", (d, g)),
        ]


class _Plugin:
    @ganzoo.hookimpl
    def ganzoo_register_variants(self, register):
        register(ThreeStageGAN)


@pytest.fixture
def three_stage():
    register_plugin(_Plugin(), name="test-stages-plugin")
    try:
        yield "test-three-stage"
    finally:
        unregister_plugin("test-stages-plugin")


# ---- resolution -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("steps", [6, 7, 100, 1001, 5000, 1_200_000])
def test_stage_lengths_follow_the_fraction_of_steps(steps):
    pretrain = half_up(5 / 6 * steps)
    assert plan(ganzoo.create("srgan"), steps) == [("pretrain", pretrain), ("gan", steps - pretrain)]
    damsm = half_up(steps / 6)
    assert plan(ganzoo.create("attngan"), steps) == [("damsm", damsm), ("gan", steps - damsm)]
    damsm = half_up(0.3214 * steps)
    assert plan(ganzoo.create("attngan.shapes32"), steps) == [("damsm", damsm), ("gan", steps - damsm)]
    assert plan(ThreeStageGAN(ThreeConfig()), steps) == [
        ("warm", half_up(0.2 * steps)),
        ("critic", half_up(0.3 * steps)),
        ("gan", steps - half_up(0.2 * steps) - half_up(0.3 * steps)),
    ]


def test_the_paper_ratio_gives_the_paper_lengths():
    assert plan(ganzoo.create("srgan"), 1_200_000) == [("pretrain", 1_000_000), ("gan", 200_000)]
    assert plan(ganzoo.create("attngan"), 3600) == [("damsm", 600), ("gan", 3000)]  # the measured run B


def test_attngan_recipe_gives_its_encoders_4500_of_its_14000_steps():
    tag = ganzoo.create("attngan.shapes32")
    assert tag.config.default_steps == 14000 and tag.config.lambda_damsm == 10.0 and tag.config.loss == "hinge"
    assert plan(tag, 14000) == [("damsm", 4500), ("gan", 9500)]
    assert plan(ganzoo.create("attngan", damsm_fraction=0.25), 1000) == [("damsm", 250), ("gan", 750)]
    assert plan(ganzoo.create("attngan.shapes32", damsm_steps=100), 10000) == [("damsm", 100), ("gan", 9900)]
    for bad in (0.0, 1.0, -0.1):
        with pytest.raises(ConfigError, match=r"damsm_fraction must be in \(0, 1\), got"):
            ganzoo.create("attngan", damsm_fraction=bad)
    with pytest.raises(ConfigError, match="damsm_fraction: nan is not a finite number"):
        ganzoo.create("attngan", damsm_fraction=float("nan"))


def test_explicit_lengths_win_over_fractions():
    assert plan(ganzoo.create("srgan", pretrain_steps=7), 100) == [("pretrain", 7), ("gan", 93)]
    assert plan(ganzoo.create("attngan", damsm_steps=600), 6000) == [("damsm", 600), ("gan", 5400)]
    assert plan(ThreeStageGAN(ThreeConfig(warm_steps=1)), 10) == [("warm", 1), ("critic", 3), ("gan", 6)]
    # The tiny presets keep one-step stages: the conformance kit trains every stage in a few steps.
    assert plan(tiny_variant("srgan"), 2) == [("pretrain", 1), ("gan", 1)]
    assert stage_steps("srgan") == 2 and stage_steps("attngan") == 2


def test_srgan_decays_the_gan_learning_rate_at_the_middle_of_the_resolved_gan_stage():
    v, g = ganzoo.create("srgan"), Phase("g", ("G",))
    # --steps 6000: pretrain 5000, gan 1000, decay 500 GAN steps in.
    assert [v.lr_factor(g, s, 6000) for s in (0, 5000, 5499, 5500, 5999)] == [1.0, 1.0, 1.0, 0.1, 0.1]
    assert v.lr_factor(Phase("g_mse", ("G",)), 5999, 6000) == 1.0
    # An explicit decay step counts from the resolved start of the GAN stage.
    v = ganzoo.create("srgan", gan_lr_decay_at=10)
    assert v.lr_factor(g, 5009, 6000) == 1.0 and v.lr_factor(g, 5010, 6000) == 0.1


def test_a_stage_left_with_zero_steps_is_refused_with_the_plan():
    with pytest.raises(ConfigError) as e:
        ganzoo.create("srgan", pretrain_steps=10).stage_plan(10)
    assert str(e.value) == (
        "--steps 10 leaves stage 'gan' of srgan with 0 steps (pretrain: 10, gan: 0); "
        "give more --steps or set pretrain_steps"
    )
    with pytest.raises(
        ConfigError, match=r"--steps 1 leaves stage 'gan' of srgan with 0 steps \(pretrain: 1, gan: 0\)"
    ):
        ganzoo.create("srgan").stage_plan(1)
    with pytest.raises(ConfigError, match=r"stage 'gan' of attngan .*\(damsm: 2, gan: 0\); .*set damsm_steps"):
        ganzoo.create("attngan", damsm_steps=2).stage_plan(2)
    with pytest.raises(ConfigError, match=r"stages 'warm', 'critic' of x with 0 steps \(warm: 0, critic: 0, gan: 1\)"):
        resolve_stages(ThreeStageGAN(ThreeConfig()).stages(), 1, "x")


def test_plans_that_cannot_resolve_are_plugin_errors():
    p = (Phase("g", ("G",)),)
    with pytest.raises(ValueError, match="fraction must be in"):
        Stage("a", p, fraction=1.0)
    with pytest.raises(ValueError, match="give it steps or a fraction"):
        resolve_stages([Stage("a", p), Stage("b", p)], 10)
    with pytest.raises(ValueError, match="runs to the end of training"):
        resolve_stages([Stage("a", p, fraction=0.5)], 10)
    with pytest.raises(ValueError, match="leave nothing to its last stage"):
        resolve_stages([Stage("a", p, fraction=0.5), Stage("b", p, fraction=0.5), Stage("c", p)], 10)


# ---- training -------------------------------------------------------------------------------------------------------


def test_trainer_refuses_a_zero_step_stage_before_writing_anything(tmp_path):
    t = Trainer(tiny_variant("srgan", pretrain_steps=3), cfg(3), out=tmp_path / "run")
    with pytest.raises(ConfigError, match="leaves stage 'gan' of srgan with 0 steps"):
        t.fit()
    assert not (tmp_path / "run").exists()


def test_cli_refuses_a_zero_step_stage_in_one_line(tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["train", "srgan", "--steps", "5", "--set", "pretrain_steps=5", "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err and not out.exists()
    assert "leaves stage 'gan' of srgan with 0 steps (pretrain: 5, gan: 0)" in err


def test_three_stage_plugin_trains_each_stage_for_its_fraction(three_stage, tmp_path):
    torch.manual_seed(0)
    t = Trainer(tiny_variant(three_stage), cfg(10, ckpt_every=0), out=tmp_path, variant_name=three_stage)
    t.fit()
    assert stages_logged(tmp_path) == ["warm"] * 2 + ["critic"] * 3 + ["gan"] * 5
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["stages"] == [{"name": "warm", "steps": 2}, {"name": "critic", "steps": 3}, {"name": "gan", "steps": 5}]
    # Every stage but the last leaves its model behind, as it stood at the stage's end.
    assert sorted(p.name for p in (tmp_path / "stages").iterdir()) == ["critic.safetensors", "warm.safetensors"]
    warm = ganzoo.load(tmp_path / "stages" / "warm.safetensors")
    critic = ganzoo.load(tmp_path / "stages" / "critic.safetensors")
    final = ganzoo.load(tmp_path / "model.safetensors")
    d = lambda m: next(v for k, v in m.state_dict().items() if k.startswith("D."))  # noqa: E731
    # Three different moments: D trains in the critic and gan stages.
    assert not torch.equal(d(warm), d(critic)) and not torch.equal(d(critic), d(final))


def test_conformance_kit_passes_a_variant_sized_by_fractions(three_stage):
    # No explicit lengths: N and 2N steps put the boundaries at different steps, so the kit resumes the 2N run.
    res = check_variant(three_stage)
    assert res["steps"] == stage_steps(three_stage) == 3


def test_resume_keeps_boundaries_and_is_exact(tmp_path):
    def fit(out, steps, resume=False, **over):
        torch.manual_seed(0)
        v = tiny_variant("srgan", **{"pretrain_steps": None, **over})
        t = Trainer(v, cfg(steps), out=out, resume=resume, variant_name="srgan")
        t.fit()
        return t

    straight = fit(tmp_path / "a", 12)  # pretrain 10, gan 2
    assert stages_logged(tmp_path / "a") == ["pretrain"] * 10 + ["gan"] * 2
    meta = ckpt.load_tensors(ckpt.checkpoint_path(tmp_path / "a" / "checkpoints", 6), ckpt.FORMAT_CHECKPOINT)[1]
    assert meta["ganzoo.state"]["stages"] == [["pretrain", 10], ["gan", 2]]

    # Interrupted at step 6 and resumed with the same --steps: the same boundary, bit for bit the same weights.
    (tmp_path / "b" / "checkpoints").mkdir(parents=True)
    src = ckpt.checkpoint_path(tmp_path / "a" / "checkpoints", 6)
    shutil.copy2(src, tmp_path / "b" / "checkpoints" / src.name)
    resumed = fit(tmp_path / "b", 12, resume=True)
    a, b = straight.variant.state_dict(), resumed.variant.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert stages_logged(tmp_path / "b") == ["pretrain"] * 4 + ["gan"] * 2

    # Another --steps would move the boundary (24 -> pretrain 20): refused, with both ways out.
    with pytest.raises(ConfigError) as e:
        fit(tmp_path / "b", 24, resume=True)
    msg = str(e.value)
    assert "has stages pretrain: 10, gan: 2 (--steps 12); --steps 24 gives pretrain: 20, gan: 4" in msg
    assert "resume with --steps 12, or keep its boundaries with --set pretrain_steps=10" in msg
    # Pinning the length keeps the boundary: the GAN stage grows.
    fit(tmp_path / "b", 16, resume=True, pretrain_steps=10)
    assert stages_logged(tmp_path / "b")[-4:] == ["gan"] * 4
