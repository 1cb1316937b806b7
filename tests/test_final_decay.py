"""``lr_decay`` of the vanilla and DCGAN variants: constant rates, then a linear decay to 0 over the final fraction of
the run (``ganzoo.schedules.final_decay``), applied by the trainer to both networks' optimizers."""

from __future__ import annotations

import pytest

import ganzoo
from ganzoo.errors import ConfigError
from ganzoo.schedules import final_decay


def test_final_decay_is_constant_then_linear_to_zero() -> None:
    factors = [final_decay(s, 10, 0.4) for s in range(10)]
    assert factors[:6] == [1.0] * 6
    assert factors[6:] == pytest.approx([0.8, 0.6, 0.4, 0.2])
    assert [final_decay(s, 10, 0.0) for s in range(10)] == [1.0] * 10
    assert final_decay(0, 10, 0.04) == 1.0  # rounds to no decaying step: constant


@pytest.mark.parametrize("name", ["dcgan", "vanilla"])
def test_lr_decay_option_sets_each_phase_factor(name: str) -> None:
    v = ganzoo.create(name, lr_decay=0.5)
    for phase in (p for stage in v.stages() for p in stage.phases):
        assert v.lr_factor(phase, 0, 100) == 1.0
        assert v.lr_factor(phase, 49, 100) == 1.0
        assert v.lr_factor(phase, 74, 100) == pytest.approx(final_decay(74, 100, 0.5))
        assert 0 <= v.lr_factor(phase, 99, 100) < 0.05
    assert ganzoo.create(name).lr_factor(v.stages()[0].phases[0], 99, 100) == 1.0  # default: constant


@pytest.mark.parametrize("name", ["dcgan", "vanilla"])
def test_lr_decay_out_of_range_is_refused(name: str) -> None:
    with pytest.raises(ConfigError, match="lr_decay must be a fraction in \\[0, 1\\], got 1.5"):
        ganzoo.create(name, lr_decay=1.5)


def test_dcgan_training_follows_the_decay(tmp_path) -> None:
    from ganzoo.cli import main
    from ganzoo.utils.plots import read_log

    out = tmp_path / "run"
    tiny = ["--set", "ngf=8", "--set", "ndf=8", "--set", "nz=8", "--set", "image_size=32", "--batch-size", "4"]
    args = ["train", "dcgan", *tiny, "--steps", "4", "--out", str(out), "--no-progress", "--log-every", "1"]
    assert main([*args, "--device", "cpu", "--precision", "fp32", "--set", "lr_decay=0.5"]) == 0

    rates = [r["lr/g"] for r in read_log(out / "log.jsonl") if "lr/g" in r]
    assert rates[0] == pytest.approx(2e-4) and rates[-1] < rates[0]
