"""Plugins extend datasets, metrics and commands through hooks, and the extensions work end to end."""

import torch

import ganzoo
from ganzoo import hookimpl, registry
from ganzoo.cli import main
from ganzoo.data import DataRequest
from ganzoo.plugins import register_plugin, unregister_plugin


class Stripes(torch.utils.data.Dataset):
    def __init__(self, request: DataRequest):
        self.size, self.channels = request.image_size, request.channels

    def __len__(self):
        return 16

    def __getitem__(self, k):
        img = torch.zeros(self.channels, self.size, self.size, dtype=torch.uint8)
        img[:, :, (k % len(self)) % self.size] = 255
        return {"image": img, "label": torch.tensor(-1)}


class Extension:
    @hookimpl
    def ganzoo_register_datasets(self, register):
        register("stripes", lambda arg, request: Stripes(request), tasks=("unconditional",), help="vertical stripes")

    @hookimpl
    def ganzoo_register_metrics(self, register):
        register("mean-abs", lambda a, b: (a - b).abs().mean().item(), tasks=("paired",), help="mean |a - b|")

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
