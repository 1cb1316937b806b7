"""The conformance kit: what every variant must do, runnable by plugin authors in their own tests.

>>> from ganzoo.testing import check_variant
>>> check_variant("mygan")          # builds tiny, trains every stage, checks outputs, save/load, exact resume
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

import torch

from . import registry
from .api import create, load
from .tasks import conformance_problems, protocol_of
from .train import TrainConfig, Trainer
from .train.data import first_items, to_device


def tiny_variant(name: str, **overrides: Any):
    """The variant ``name`` built with its class's ``tiny`` overrides (plus ``overrides``)."""
    spec, _, preset = registry.resolve(name)
    return create(name, **{**preset, **spec.cls.tiny, **overrides})


def _train(
    name: str, out: Path, steps: int, resume: bool = False, data: str | None = None, **overrides: Any
) -> Trainer:
    torch.manual_seed(0)
    v = tiny_variant(name, **overrides)
    cfg = TrainConfig(
        steps=steps,
        device="cpu",
        precision="fp32",
        log_every=1,
        sample_every=0,
        ckpt_every=1,
        keep=100,
        n_samples=4,
        progress=False,
        tensorboard=False,
        num_workers=0,
    )
    t = Trainer(v, cfg, data=data, out=out, resume=resume, variant_name=name)
    t.fit()
    return t


def stage_steps(name: str, **overrides: Any) -> int:
    """Steps that reach the last stage of the tiny variant, plus one."""
    v = tiny_variant(name, **overrides)
    return sum(s.steps or 0 for s in v.stages()[:-1]) + 1


def check_variant(name: str, data: str | None = None, resume: bool = True, **overrides: Any) -> dict[str, Any]:
    """Check that variant ``name`` conforms: it builds tiny, trains one step in every stage with finite losses,
    implements its task's protocol of :mod:`ganzoo.tasks`, produces finite images in [-1, 1], survives an
    export/load round trip with identical outputs, and (with ``resume``) resumes exactly.

    :param name: the registered name (``"mygan"`` or ``"mygan.tag"``); the class's ``tiny`` overrides apply.
    :param data: the data spec to train on; default: the variant's default data (a built-in procedural dataset).
    :param resume: also check exact resume (N steps + resume + N steps equals 2N steps, weights and EMA bit for
        bit); it trains three more short runs.
    :param overrides: config overrides applied after ``tiny``.
    :returns: ``{"steps": ..., "losses": ...}``: the steps trained and the last log record.
    :raises AssertionError: with a message naming the variant and what failed.
    """
    import json

    steps = max(2, stage_steps(name, **overrides))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t = _train(name, tmp / "a", steps, data=data, **overrides)
        records = [json.loads(line) for line in (tmp / "a" / "log.jsonl").read_text().splitlines()]
        assert len(records) == steps, f"{name}: expected {steps} log records, got {len(records)}"
        stages_seen = {r["stage"] for r in records}
        want = {s.name for s in t.variant.stages()}
        assert stages_seen == want, f"{name}: stages trained {stages_seen}, declared {want}"
        for r in records:
            for k, v in r.items():
                if isinstance(v, float):
                    assert math.isfinite(v), f"{name}: {k} is not finite at step {r['step']}: {v}"

        model = load(tmp / "a" / "model.safetensors")
        protocol = protocol_of(model.task)
        problems = conformance_problems(model, protocol)
        assert not problems, f"{name}: does not implement ganzoo.tasks.{protocol.__name__}: {'; '.join(problems)}"
        gen = torch.Generator().manual_seed(1)
        batch = to_device(first_items(t.dataset, 2), torch.device("cpu"))
        inputs = model.sample_inputs(2, gen, batch=batch)
        with torch.no_grad():
            out = model.sample_images(inputs)
        assert out.dim() == 4 and out.shape[1] in (1, 3), f"{name}: sample images have shape {tuple(out.shape)}"
        assert torch.isfinite(out).all(), f"{name}: sample images are not finite"
        assert out.min() >= -1.0001 and out.max() <= 1.0001, f"{name}: sample images leave [-1, 1]"

        again = load(tmp / "a" / "model.safetensors")
        with torch.no_grad():
            out2 = again.sample_images(inputs)
        assert torch.equal(out, out2), f"{name}: two loads of one model file give different outputs"

        result = {"steps": steps, "losses": records[-1]}
        if resume:
            check_exact_resume(name, tmp, steps, data=data, **overrides)
        return result


def check_exact_resume(name: str, tmp: Path, steps: int, data: str | None = None, **overrides: Any) -> None:
    """N steps + resume + N steps must give the same weights as 2N steps straight."""
    straight = _train(name, tmp / "straight", 2 * steps, data=data, **overrides)
    _train(name, tmp / "split", steps, data=data, **overrides)
    resumed = _train(name, tmp / "split", 2 * steps, resume=True, data=data, **overrides)
    a, b = straight.variant.state_dict(), resumed.variant.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), (
            f"{name}: weight {k} differs after resume ({(a[k].float() - b[k].float()).abs().max()})"
        )
    if straight.ema is not None:
        ea, eb = straight.ema.state_tensors(), resumed.ema.state_tensors()
        for k in ea:
            assert torch.equal(ea[k], eb[k]), f"{name}: EMA weight {k} differs after resume"
