"""The conformance kit: what every variant must do, runnable by plugin authors in their own tests.

>>> from ganzoo.testing import check_variant
>>> check_variant("mygan")          # builds tiny, trains every stage, checks outputs, save/load, exact resume
"""

from __future__ import annotations

import math
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from . import registry
from .api import create, load
from .data.base import DataError, get_items
from .errors import ConfigError
from .tasks import conformance_problems, protocol_of
from .train import TrainConfig, Trainer
from .train.checkpoint import checkpoint_path
from .train.data import build_dataset, first_items, to_device
from .variant import GANVariant


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
    """The fewest ``--steps`` that give every stage of the tiny variant at least one step (the stage lengths
    resolved as training resolves them, :meth:`ganzoo.GANVariant.stage_plan`)."""
    v = tiny_variant(name, **overrides)
    first = len(v.stages())
    for total in range(first, first + 10_000):
        try:
            v.stage_plan(total)
            return total
        except ConfigError:
            continue
    raise AssertionError(f"{name}: no run of up to {first + 9_999} steps gives every stage a step")


def _boundaries(name: str, steps: int, **overrides: Any) -> list[int]:
    plan = tiny_variant(name, **overrides).stage_plan(steps)
    return [sum(int(s.steps or 0) for s in plan[:i]) for i in range(1, len(plan))]


# The keys each task's items must carry (the batch schema of ganzoo.Task).
TASK_KEYS: dict[str, tuple[str, ...]] = {
    "unconditional": ("image", "label"),
    "paired": ("a", "b"),
    "unpaired": ("a", "b"),
    "super_resolution": ("lr", "hr"),
    "text_to_image": ("image", "tokens", "length", "caption"),
    "anomaly": ("image", "label"),
}


def _same_item(x: dict[str, Any], y: dict[str, Any]) -> bool:
    if x.keys() != y.keys():
        return False
    for k in x:
        a, b = x[k], y[k]
        if torch.is_tensor(a) or torch.is_tensor(b):
            if not (torch.is_tensor(a) and torch.is_tensor(b) and a.shape == b.shape and torch.equal(a, b)):
                return False
        elif a != b:
            return False
    return True


def check_dataset(spec: str, variant: GANVariant, probe: int = 3) -> None:
    """Check that the dataset ``spec`` keeps the dataset contract for ``variant``'s task.

    The trainer draws *virtual* indices ``k`` that grow without end (``epoch * len(ds) + i``) and resumes a run
    by replaying them, so a dataset must have a positive, fixed ``len``, accept every ``k >= 0``, return the same
    item for the same ``k`` every time (single or batched through ``__getitems__``; any randomness seeded from
    ``k`` and the request's seed, never from a global generator) and carry the task's keys. Stored data returns
    item ``k % len`` (augmented from ``k`` on ``train``); procedural data may render item ``k`` itself, an endless
    stream whose ``len`` is the epoch length, as the built-in ones do.

    :param spec: the data spec (``"shapes"``, ``"checkers"``, ``"mnist:/data/mnist"``).
    :param variant: the variant the dataset is built for (its task, image size and channels).
    :param probe: how many indices to check per split.
    :raises AssertionError: naming the dataset, the split and what broke the contract.
    """
    task = str(variant.task)
    for split in ("train", "test"):
        try:
            ds = build_dataset(spec, variant, split=split, seed=0)
        except DataError:
            if split == "train":
                raise
            continue  # a dataset without a held-out split
        n = len(ds)
        assert isinstance(n, int) and n > 0, f"{spec} ({split}): len() must be a positive int, got {n!r}"
        assert len(ds) == n, f"{spec} ({split}): len() changes between calls"
        ks = sorted({0, n // 2, n - 1})[:probe]
        for k in ks:
            item = ds[k]
            missing = [key for key in TASK_KEYS.get(task, ()) if key not in item]
            assert not missing, f"{spec} ({split}): item {k} lacks {missing} of the {task} batch schema"
            assert _same_item(item, ds[k]), f"{spec} ({split}): item {k} differs between two reads"
            wrapped = ds[k + n]
            assert wrapped.keys() == item.keys(), f"{spec} ({split}): item {k + n} has other keys than item {k}"
            assert _same_item(wrapped, ds[k + n]), f"{spec} ({split}): item {k + n} differs between two reads"
        batched = get_items(ds, ks)
        for k, got in zip(ks, batched):
            assert _same_item(got, ds[k]), f"{spec} ({split}): __getitems__ and ds[k] disagree at k = {k}"


def check_tag_descriptions(cls: type[GANVariant]) -> None:
    """Check that every tag of a variant class has its own one-line description in ``tag_descriptions`` (what
    ``ganzoo list`` and ``ganzoo info`` show) and that no description names a tag that does not exist.

    :param cls: the variant class.
    :raises AssertionError: naming the tags without a description, or the descriptions without a tag.
    """
    label = cls.name or cls.__name__
    descriptions = cls.tag_descriptions
    missing = sorted(t for t in cls.tags if not (isinstance(descriptions.get(t), str) and descriptions[t].strip()))
    assert not missing, f"{label}: tags without a description in tag_descriptions: {', '.join(missing)}"
    stray = sorted(set(descriptions) - set(cls.tags))
    assert not stray, f"{label}: tag_descriptions names tags that do not exist: {', '.join(stray)}"
    multi = sorted(t for t, d in descriptions.items() if "\n" in d.strip())
    assert not multi, f"{label}: tag descriptions must be one line: {', '.join(multi)}"


def check_variant(name: str, data: str | None = None, resume: bool = True, **overrides: Any) -> dict[str, Any]:
    """Check that variant ``name`` conforms: every tag has a description (:func:`check_tag_descriptions`), its data
    keeps the dataset contract (:func:`check_dataset`), it builds
    tiny, trains one step in every stage with finite losses,
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

    check_tag_descriptions(registry.resolve(name)[0].cls)
    steps = max(2, stage_steps(name, **overrides))
    probe = tiny_variant(name, **overrides)
    check_dataset(data or probe.default_data, probe)
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
            out = model.sample_images(inputs).images
        assert out.dim() == 4 and out.shape[1] in (1, 3), f"{name}: sample images have shape {tuple(out.shape)}"
        assert torch.isfinite(out).all(), f"{name}: sample images are not finite"
        assert out.min() >= -1.0001 and out.max() <= 1.0001, f"{name}: sample images leave [-1, 1]"

        again = load(tmp / "a" / "model.safetensors")
        with torch.no_grad():
            out2 = again.sample_images(inputs).images
        assert torch.equal(out, out2), f"{name}: two loads of one model file give different outputs"

        result = {"steps": steps, "losses": records[-1]}
        if resume:
            check_exact_resume(name, tmp, steps, data=data, **overrides)
        return result


def check_exact_resume(name: str, tmp: Path, steps: int, data: str | None = None, **overrides: Any) -> None:
    """N steps + resume + N steps must give the same weights as 2N steps straight. Where ``--steps`` N and 2N put
    the stage boundaries at different steps (stages sized by fraction), a resume to 2N is refused, so the first N
    steps are the straight run's own: its step-N checkpoint, resumed by a new trainer."""
    straight = _train(name, tmp / "straight", 2 * steps, data=data, **overrides)
    if _boundaries(name, steps, **overrides) == _boundaries(name, 2 * steps, **overrides):
        _train(name, tmp / "split", steps, data=data, **overrides)
    else:
        src = checkpoint_path(tmp / "straight" / "checkpoints", steps)
        (tmp / "split" / "checkpoints").mkdir(parents=True)
        shutil.copy2(src, tmp / "split" / "checkpoints" / src.name)
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
