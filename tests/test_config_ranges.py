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
