"""The 2D-mixture recipes of the vanilla GAN (``vanilla.ring8`` / ``vanilla.grid25``): the tags are valid and carry
their length, precision ``auto`` stays fp32 for points, the learning-rate decay and R1 work, and Maxout's gradient is
unchanged by its cheaper backward."""

from __future__ import annotations

import json

import pytest
import torch

import ganzoo
from ganzoo.errors import ConfigError
from ganzoo.nn import Maxout
from ganzoo.train import TrainConfig, Trainer


@pytest.mark.parametrize("tag", ["ring8", "grid25"])
def test_recipe_tags_are_valid_and_carry_their_length(tag):
    v = ganzoo.create(f"vanilla.{tag}")
    v.config.validate()
    assert v.default_data == tag and v.config.arch == "pacgan2d"
    assert v.default_steps == v.config.default_steps > 1000
    assert v.reduced_precision is False  # 2D points train in fp32 under precision auto
    assert ganzoo.create("dcgan").reduced_precision is True  # the contract's default
    assert ganzoo.create("vanilla").default_steps is None  # no recipe length: the trainer's default


def test_bad_recipe_values_are_config_errors():
    for bad in ({"lr_decay": 1.5}, {"r1": -1.0}, {"default_steps": -3}):
        with pytest.raises(ConfigError):
            ganzoo.create("vanilla.ring8", **bad).config.validate()


def test_lr_decays_linearly_to_zero_over_the_final_fraction():
    v = ganzoo.create("vanilla.ring8", lr_decay=0.5)
    ph = v.stages()[0].phases[0]
    factors = [v.lr_factor(ph, s, 100) for s in range(100)]
    assert factors[:50] == [1.0] * 50
    assert all(a > b for a, b in zip(factors[49:], factors[50:]))
    assert 0.0 <= factors[-1] < 0.05
    flat = ganzoo.create("vanilla.ring8", lr_decay=0.0)
    assert {flat.lr_factor(ph, s, 100) for s in range(100)} == {1.0}


def test_precision_auto_is_fp32_for_points_and_an_explicit_choice_wins(tmp_path):
    v = ganzoo.create("vanilla.ring8")
    assert Trainer(v, TrainConfig(device="cpu"), out=tmp_path).dtype == torch.float32
    assert Trainer(v, TrainConfig(device="cpu", precision="bf16"), out=tmp_path).dtype == torch.bfloat16


def test_r1_penalty_is_logged_and_trains(tmp_path):
    torch.manual_seed(0)
    v = ganzoo.create("vanilla.ring8", r1=0.1, batch_size=8, lr_decay=0.5)
    cfg = TrainConfig(steps=3, device="cpu", progress=False, tensorboard=False, log_every=1, sample_every=0)
    result = Trainer(v, cfg, out=tmp_path).fit()
    assert result["losses"]["d/r1"] >= 0.0
    lrs = [json.loads(line).get("lr/d") for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    lrs = [lr for lr in lrs if lr is not None]
    assert lrs[0] > lrs[-1]  # the decay ran


def test_train_cli_uses_the_recipe_length_unless_steps_is_given(tmp_path):
    from ganzoo.cli import main

    common = ["train", "vanilla.ring8", "--set", "batch_size=4", "--no-progress", "--sample-every", "0"]
    assert main([*common, "--set", "default_steps=3", "--out", str(tmp_path / "a")]) == 0
    run = json.loads((tmp_path / "a" / "run.json").read_text())
    assert run["train"]["steps"] == 3 and run["train"]["precision"] == "fp32"
    assert main([*common, "--set", "default_steps=3", "--steps", "2", "--out", str(tmp_path / "b")]) == 0
    assert json.loads((tmp_path / "b" / "run.json").read_text())["train"]["steps"] == 2


def test_maxout_gradient_matches_the_amax_definition():
    torch.manual_seed(0)
    m = Maxout(6, 4, 3)
    x = torch.randn(5, 6, requires_grad=True)
    m(x).square().sum().backward()
    got = (x.grad.clone(), m.linear.weight.grad.clone())
    x.grad = None
    m.zero_grad()
    m.linear(x).view(5, 4, 3).amax(-1).square().sum().backward()
    torch.testing.assert_close(got[0], x.grad)
    torch.testing.assert_close(got[1], m.linear.weight.grad)
