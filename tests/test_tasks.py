"""Every registered variant implements its task's protocol (ganzoo.tasks), with the documented shapes and ranges;
commands and evaluators refuse a model of the wrong task or without its protocol in one line."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
import torch
from torch import nn

import ganzoo
from ganzoo import GANVariant, Phase, Stage, Task, registry
from ganzoo.cli import main
from ganzoo.errors import ConfigError, PluginError
from ganzoo.metrics.evaluate import evaluate
from ganzoo.plugins import register_plugin, unregister_plugin
from ganzoo.tasks import (
    TASK_PROTOCOLS,
    AnomalyScorer,
    ClassConditionalGenerator,
    NoiseGenerator,
    TextToImageGenerator,
    Translator,
    Upscaler,
    conformance_problems,
    protocol_of,
    require,
)
from ganzoo.testing import tiny_variant

VARIANTS = sorted(registry.variants())
TAGS = sorted(f"{s.name}.{t}" for s in registry.variants().values() for t in s.tags)


def _in_range(x: torch.Tensor) -> bool:
    return bool(torch.isfinite(x).all() and x.min() >= -1 and x.max() <= 1)


@pytest.mark.parametrize("name", VARIANTS + TAGS)
def test_every_variant_implements_its_task_protocol(name: str) -> None:
    spec = registry.resolve(name)[0]
    model = tiny_variant(name).eval()
    protocol = TASK_PROTOCOLS[spec.task]
    assert protocol_of(spec.task) is protocol
    assert isinstance(model, protocol) and conformance_problems(model, protocol) == []
    assert require(model, protocol, purpose="this test") is model


@pytest.mark.parametrize("name", VARIANTS)
def test_protocol_outputs_have_the_documented_shapes(name: str) -> None:
    torch.manual_seed(0)
    model = tiny_variant(name).eval()
    c, size = model.channels, model.image_size
    if model.task == Task.UNCONDITIONAL:
        gen = require(model, NoiseGenerator, purpose="this test")
        x = gen.generate(n=3, seed=5)
        assert x.shape == ((3, 2) if size == 0 else (3, c, size, size))
        assert size == 0 or _in_range(x)
        assert torch.equal(x, gen.generate(n=3, seed=5)) and not torch.equal(x, gen.generate(n=3, seed=6))
        assert gen.generate().shape[0] == 64  # n defaults to 64
    elif model.task in (Task.PAIRED, Task.UNPAIRED):
        tr = require(model, Translator, purpose="this test")
        assert tr.directions == (("a2b",) if model.task == Task.PAIRED else ("a2b", "b2a"))
        x = torch.rand(2, c, 36, 44) * 2 - 1
        for direction in tr.directions:
            y = tr.translate(x, direction)
            assert y.shape == x.shape and _in_range(y)
        assert tr.translate(x[0]).shape == x[0].shape
        with pytest.raises(ConfigError, match="direction|one way"):
            tr.translate(x, "sideways")
    elif model.task == Task.SUPER_RESOLUTION:
        up = require(model, Upscaler, purpose="this test")
        lr = torch.rand(2, c, 7, 9) * 2 - 1
        y = up.upscale(lr)
        assert isinstance(up.scale, int) and y.shape == (2, c, 7 * up.scale, 9 * up.scale) and _in_range(y)
        assert torch.allclose(up.upscale(lr, tile=4), y, atol=1e-5)
    elif model.task == Task.TEXT_TO_IMAGE:
        t2i = require(model, TextToImageGenerator, purpose="this test")
        caps = ["a large red circle on the left", "a small blue square at the top", "a green cross"]
        x = t2i.generate_from_captions(caps, seed=1)
        assert x.shape == (3, c, size, size) and _in_range(x)
        assert torch.equal(x, t2i.generate_from_captions(caps, seed=1))
    elif model.task == Task.ANOMALY:
        scorer = require(model, AnomalyScorer, purpose="this test")
        images = torch.randint(0, 256, (5, c, size, size), dtype=torch.uint8)
        s = scorer.score(images)
        assert s.shape == (5,) and s.dtype.is_floating_point and torch.isfinite(s).all() and s.device.type == "cpu"
        assert torch.allclose(s, scorer.score(images.float() / 127.5 - 1), atol=1e-5)
    else:  # a new task needs its protocol and a branch here
        pytest.fail(f"no protocol check for task {model.task}")


def test_class_conditional_generation() -> None:
    model = tiny_variant("dcgan.cond").eval()
    gen = require(model, ClassConditionalGenerator, purpose="this test")
    assert gen.num_classes == 6
    z = torch.randn(4, model.config.nz, 1, 1)
    a, b = gen.generate(z=z, labels=torch.tensor([0, 1, 2, 3])), gen.generate(z=z, labels=torch.tensor([3, 3, 3, 3]))
    assert a.shape == (4, model.channels, model.image_size, model.image_size) and not torch.equal(a, b)
    assert torch.equal(gen.generate(z=z), a)  # default labels: the classes in turn
    with pytest.raises(ConfigError, match="without classes"):
        require(tiny_variant("dcgan"), ClassConditionalGenerator, purpose="class sampling")


# ---- a variant without its task's protocol, and models of the wrong task ---------------------------------------------


@dataclass
class _Cfg:
    image_size: int = 16
    channels: int = 3
    data: str = ""


class HalfTranslator(GANVariant):
    """A paired variant implementing generate(**inputs), the contract before the task protocols."""

    name = "test-half-translator"
    task = Task.PAIRED
    Config = _Cfg
    default_data_spec = "shapes-pairs"

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        self.p = nn.Parameter(torch.zeros(1))

    def stages(self) -> list[Stage]:
        return [Stage("g", (Phase("g", ("p",)),))]

    def generate(self, **inputs: Any) -> torch.Tensor:
        return inputs["a"]


class _Plugin:
    @ganzoo.hookimpl
    def ganzoo_register_variants(self, register):
        register(HalfTranslator)


def test_a_variant_without_its_protocol_gets_a_clear_error(tmp_path, capsys) -> None:
    model = HalfTranslator()
    assert not isinstance(model, Translator)
    assert conformance_problems(model, Translator) == ["no 'directions'", "no 'translate'"]
    with pytest.raises(PluginError, match=r"test-half-translator.*Translator.*no 'translate'"):
        evaluate(model, n=2)
    register_plugin(_Plugin(), "test-tasks-plugin")
    try:
        path = ganzoo.save_model(ganzoo.create("test-half-translator"), tmp_path / "half.safetensors")
        assert main(["translate", str(path), str(tmp_path), "-o", str(tmp_path / "out")]) == 2
        assert "does not implement ganzoo.tasks.Translator" in capsys.readouterr().err
    finally:
        unregister_plugin("test-tasks-plugin")


def test_signatures_are_checked_not_only_names() -> None:
    class Loose:
        task = Task.UNCONDITIONAL
        name = "loose"

        def generate(self, **kwargs: Any) -> torch.Tensor:
            return torch.zeros(1)

    class Short:
        task = Task.UNCONDITIONAL
        name = "short"

        def generate(self, n: int = 1) -> torch.Tensor:
            return torch.zeros(n)

    assert "**kwargs" in conformance_problems(Loose(), NoiseGenerator)[0]
    assert conformance_problems(Short(), NoiseGenerator) == [
        "generate() has no parameter 'z'",
        "generate() has no parameter 'seed'",
    ]


def test_commands_refuse_models_of_another_task(tmp_path, capsys) -> None:
    pix = ganzoo.save_model(tiny_variant("pix2pix"), tmp_path / "p.safetensors", name="pix2pix")
    assert main(["sample", str(pix), "-o", str(tmp_path / "s.png")]) == 2
    assert "pix2pix is a paired model; `ganzoo sample` needs a model of task unconditional" in capsys.readouterr().err
    dc = ganzoo.save_model(tiny_variant("dcgan"), tmp_path / "d.safetensors", name="dcgan")
    assert main(["upscale", str(dc), str(tmp_path), "-o", str(tmp_path / "up")]) == 2
    assert "needs a model of task super_resolution" in capsys.readouterr().err
    assert main(["sample", str(dc), "-n", "4", "-o", str(tmp_path / "s.png")]) == 0
    assert (tmp_path / "s.png").is_file()
