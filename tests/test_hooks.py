"""Plugins extend datasets, metrics, evaluators and commands through hooks, and the extensions work end to end."""

import json

import torch

import ganzoo
from ganzoo import hookimpl, registry
from ganzoo.cli import main
from ganzoo.data import DataRequest
from ganzoo.metrics.evaluators import EvalContext, Evaluation, Evaluator
from ganzoo.plugins import register_plugin, unregister_plugin
from ganzoo.tasks import NoiseGenerator, require


class Stripes(torch.utils.data.Dataset):
    def __init__(self, request: DataRequest):
        self.size, self.channels = request.image_size, request.channels

    def __len__(self):
        return 16

    def __getitem__(self, k):
        img = torch.zeros(self.channels, self.size, self.size, dtype=torch.uint8)
        img[:, :, (k % len(self)) % self.size] = 255
        return {"image": img, "label": torch.tensor(-1)}


class MeanPixel:
    """An evaluator a plugin adds: the mean pixel value of N samples, with N real train images as the baseline."""

    name = "mean-pixel"
    tasks = ("unconditional",)
    metrics = ("mean-pixel",)
    default_n = 6
    help = "mean pixel value in [-1, 1] of N samples"

    def applies(self, model, data):
        return model.image_size > 0

    def evaluate(self, model: NoiseGenerator, ctx: EvalContext) -> Evaluation:
        fake = require(model, NoiseGenerator, purpose="mean-pixel").generate(n=ctx.n, seed=ctx.seed)
        real = torch.stack([ctx.dataset(model, "train")[i]["image"] for i in range(ctx.n)]).float() / 127.5 - 1
        return Evaluation(
            scores={"mean_pixel": float(fake.mean())},
            baselines={"real": {"mean_pixel": float(real.mean())}},
            provenance={"mean-pixel": {"n": ctx.n, "data": ctx.data}},
        )


class Extension:
    @hookimpl
    def ganzoo_register_evaluators(self, register):
        register(MeanPixel())

    @hookimpl
    def ganzoo_register_datasets(self, register):
        register("stripes", lambda arg, request: Stripes(request), tasks=("unconditional",), help="vertical stripes")

    @hookimpl
    def ganzoo_register_metrics(self, register):
        register(
            "mean-abs", lambda a, b: (a - b).abs().mean().item(), kind="scores", tasks=("anomaly",), help="mean |a - b|"
        )

    @hookimpl
    def ganzoo_register_commands(self, register):
        def configure(parser):
            parser.add_argument("word")

        def run(args):
            print(f"hello {args.word}")
            return 0

        register("hello", "say hello", configure, run)


def test_dataset_metric_and_command_hooks(tmp_path, capsys):
    register_plugin(Extension(), "extension")
    try:
        assert registry.get("dataset", "stripes").plugin == "extension"
        assert registry.get("metric", "mean-abs").obj(torch.ones(2), torch.zeros(2)) == 1.0
        assert main(["hello", "world"]) == 0
        assert "hello world" in capsys.readouterr().out
        rc = main(
            [
                "train",
                "dcgan",
                "--data",
                "stripes",
                "--steps",
                "1",
                "--batch-size",
                "4",
                "--set",
                "ngf=8",
                "--set",
                "ndf=8",
                "--set",
                "image_size=32",
                "--device",
                "cpu",
                "--no-progress",
                "--out",
                str(tmp_path / "r"),
            ]
        )
        assert rc == 0
        plugins = {p["name"]: p for p in ganzoo.list_plugins()}
        assert plugins["extension"]["registered"] == {
            "dataset": ["stripes"],
            "metric": ["mean-abs"],
            "evaluator": ["mean-pixel"],
            "command": ["hello"],
        }
    finally:
        unregister_plugin("extension")
    assert "stripes" not in registry.datasets()


def test_dataset_task_mismatch_is_a_clear_error(tmp_path, capsys):
    register_plugin(Extension(), "extension")
    try:
        from ganzoo.testing import tiny_variant
        from ganzoo.train.data import build_dataset

        v = tiny_variant("dcgan")
        assert len(build_dataset("stripes", v)) == 16
    finally:
        unregister_plugin("extension")


def test_a_plugin_evaluator_runs_in_ganzoo_eval(tmp_path, capsys, monkeypatch):
    """`ganzoo eval` runs what the registry holds for the model's task: a plugin's evaluator too, by default and by
    name, beside the built-in ones (skipped here with notes: no Inception weights, no domain classifier for
    stripes)."""
    monkeypatch.setenv("GANZOO_INCEPTION_WEIGHTS", str(tmp_path / "absent.pt"))
    monkeypatch.setenv("GANZOO_CACHE", str(tmp_path / "cache"))
    register_plugin(Extension(), "extension")
    try:
        assert isinstance(registry.get("evaluator", "mean-pixel").obj, Evaluator)
        run = tmp_path / "r"
        args = ["--data", "stripes", "--steps", "2", "--batch-size", "4", "--device", "cpu", "--no-progress"]
        sizes = ["--set", "ngf=8", "--set", "ndf=8", "--set", "image_size=32"]
        assert main(["train", "dcgan", *args, *sizes, "--out", str(run)]) == 0
        capsys.readouterr()
        assert main(["eval", str(run), "--json", "--no-save"]) == 0
        res = json.loads(capsys.readouterr().out)
        assert res["evaluators"] == ["inception", "domain", "mean-pixel"] and res["n"] == 1000
        model = ganzoo.load(run)
        want = float(model.eval().generate(n=6, seed=0).mean())  # the evaluator's own default N
        assert abs(res["scores"]["mean_pixel"] - want) < 1e-6
        assert res["baselines"]["real"]["mean_pixel"] < -0.5  # stripes: mostly black
        assert res["provenance"]["mean-pixel"] == {"n": 6, "data": "stripes"}
        assert any("Inception" in note for note in res["notes"]) and any("domain" in note for note in res["notes"])
        # Selected by name, with N; the table shows the baseline beside the score.
        assert main(["eval", str(run), "--metrics", "mean-pixel", "-n", "3", "--no-save"]) == 0
        table = capsys.readouterr().out
        assert "mean_pixel" in table and "real" in table and "N=3" in table
        assert main(["eval", str(run), "--metrics", "mean-pixle", "--no-save"]) == 2
        assert "Did you mean 'mean-pixel'" in capsys.readouterr().err
    finally:
        unregister_plugin("extension")
    assert "mean-pixel" not in registry.evaluators()
