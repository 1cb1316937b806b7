"""The shared range check (``ganzoo.config.require``): every config field that must be >= 0 refuses a negative
value with one error naming the field and the value, whichever variant or the trainer owns it."""

from __future__ import annotations

import pytest

import ganzoo
from ganzoo.errors import ConfigError
from ganzoo.train.config import TrainConfig

NON_NEGATIVE = [
    ("dcgan", "fc"),
    ("dcgan", "num_classes"),
    ("dcgan", "r1_gamma"),
    ("dcgan", "gp_weight"),
    ("dcgan", "drs_finetune"),
    ("vanilla", "r1"),
    ("ganomaly", "w_adv"),
    ("ganomaly", "reinit_threshold"),
    ("cyclegan", "lambda_identity"),
    ("cyclegan", "pool_size"),
    ("srgan", "n_blocks"),
    ("srgan", "adv_weight"),
    ("attngan", "kl_weight"),
    ("pix2pix", "lambda_l1"),
]


@pytest.mark.parametrize(("name", "field"), NON_NEGATIVE)
def test_negative_values_are_refused_naming_the_field(name, field):
    with pytest.raises(ConfigError, match=rf"^{field} must be >= 0, got -1(\.0)?$"):
        ganzoo.create(name, **{field: -1})
    assert getattr(ganzoo.create(name, **{field: 0}).config, field) == 0


def test_the_trainer_refuses_negative_intervals():
    for field in ("sample_every", "ckpt_every", "eval_every"):
        with pytest.raises(ConfigError, match=rf"^{field} must be >= 0, got -1(\.0)?$"):
            TrainConfig(**{field: -1}).validate()


def test_require_refuses_nan_in_every_range():
    # NaN compares false with every number: each check must fail it, not let it through
    from dataclasses import dataclass

    from ganzoo.config import require

    @dataclass
    class Ranges:
        value: float = float("nan")

    for kind, words in (
        ("at_least_1", ">= 1"),
        ("non_negative", ">= 0"),
        ("positive", "> 0"),
        ("fraction", "a fraction in"),
    ):
        with pytest.raises(ConfigError, match=rf"^value must be {words}.*got nan$"):
            require(Ranges(), **{kind: ("value",)})
        require(Ranges(value=1.0), **{kind: ("value",)})  # in every range
    # A stage's share of --steps: open at both ends, NaN refused too.
    for bad in (float("nan"), 0.0, 1.0):
        with pytest.raises(ConfigError, match=rf"^value must be in \(0, 1\), got {bad}$"):
            require(Ranges(value=bad), stage_share=("value",))
    require(Ranges(value=0.5), stage_share=("value",))
