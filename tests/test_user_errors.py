"""User mistakes end in one line and exit status 2, never a traceback (issue 16, item 8): one test per mistake."""

from __future__ import annotations

import argparse
import contextlib
import io
from pathlib import Path

import pytest
import torch

from ganzoo import cliargs
from ganzoo.cli import build_parser, main
from ganzoo.config import apply_overrides, config_differences, load_yaml
from ganzoo.errors import CheckpointError, ConfigError


def run(*argv: object) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main([str(a) for a in argv])
    return rc, out.getvalue(), err.getvalue()


def refused(*argv: object) -> str:
    """The one-line message of a refused command."""
    rc, _, err = run(*argv)
    assert rc == 2, err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    return err


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny vanilla.ring8 run (two steps)."""
    out = tmp_path_factory.mktemp("errors") / "run"
    torch.manual_seed(0)
    rc, _, err = run("train", "vanilla.ring8", "--steps", 2, "--batch-size", 8, "--out", out, "--no-progress")
    assert rc == 0, err
    return out


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


# ---- config fields ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,setting,needle",
    [
        ("vanilla", "lr_g=nan", "lr_g: 'nan' is not a finite number"),
        ("vanilla", "lr_d=inf", "lr_d: 'inf' is not a finite number"),
        ("dcgan", "r1_gamma=1e999", "r1_gamma: '1e999' is not a finite number"),
        ("vanilla", "beta1=2", "beta1 must be in [0, 1), got 2.0"),
        ("dcgan", "ngf=99999999999", "ngf must be at most 16,384, got 99,999,999,999"),
        ("vanilla", "nz=99999999999", "nz must be at most 65,536"),
        ("dcgan", "ngf=8192", "ngf=8,192 (default 64) would have"),
        ("pix2pix", "ngf=4000", "lower ngf"),
        ("dcgan", "image_size=4096", "a batch of batch_size 64 x channels 3 x image_size 4096^2"),
    ],
)
def test_config_values_out_of_range_are_named(name, setting, needle, tmp_path):
    err = refused("train", name, "--set", setting, "--steps", 1, "--out", tmp_path / "run")
    assert needle in err
    assert not (tmp_path / "run").exists()


def test_float_fields_refuse_non_finite_values_from_every_source():
    from ganzoo import create

    with pytest.raises(ConfigError, match="lr_g: nan is not a finite number"):
        create("dcgan", lr_g=float("nan"))
    from ganzoo.train import TrainConfig

    with pytest.raises(ConfigError, match="ema_decay: 'inf' is not a finite number"):
        apply_overrides(TrainConfig(), {"ema_decay": "inf"})


def test_a_header_config_that_is_not_a_mapping_is_refused():
    from plugins.ganzoo_vanilla.variant import VanillaGAN

    with pytest.raises(ConfigError, match="must be a mapping"):
        VanillaGAN.make_config([1, 2])  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="config key 3 of VanillaConfig is not a name"):
        VanillaGAN.make_config({3: 1})  # type: ignore[dict-item]


def test_pack_quotes_the_batch_size_given(tmp_path):
    err = refused("train", "dcgan.pac2", "--batch-size", 3, "--steps", 1, "--out", tmp_path / "run")
    assert "--batch-size 3: batch_size 3 must be divisible by pack 2" in err


# ---- command-line values ---------------------------------------------------------------------------------------------


def _commands_with(option: str) -> list[list[str]]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    found = []
    for name, p in sub.choices.items():
        nested = next((a for a in p._actions if isinstance(a, argparse._SubParsersAction)), None)
        for path, q in [([name], p)] if nested is None else [([name, n], q) for n, q in nested.choices.items()]:
            if any(option in a.option_strings for a in q._actions):
                found.append(path)
    return found


DEVICE_COMMANDS = _commands_with("--device")
SEED_COMMANDS = _commands_with("--seed")


def test_every_device_and_seed_option_is_found():
    assert {"train", "sample", "eval", "metrics", "bench", "upscale", "score"} <= {c[0] for c in DEVICE_COMMANDS}
    assert {"train", "sample", "eval", "metrics"} <= {c[0] for c in SEED_COMMANDS}


@pytest.mark.parametrize("command", DEVICE_COMMANDS, ids=[" ".join(c) for c in DEVICE_COMMANDS])
def test_an_unknown_device_is_refused_by_every_command(command):
    assert "device 'nosuch' is not valid; use auto, cpu, cuda or cuda:N" in refused(*command, "--device", "nosuch")


@pytest.mark.parametrize("command", SEED_COMMANDS, ids=[" ".join(c) for c in SEED_COMMANDS])
@pytest.mark.parametrize("seed", [-1, 2**32, 10**23, "x"])
def test_seeds_beyond_32_bits_or_negative_are_refused(command, seed):
    assert "0..4294967295" in refused(*command, "--seed", seed)


def test_largest_seed_samples(trained, tmp_path):
    rc, _, err = run("sample", trained, "-n", 2, "--seed", 2**32 - 1, "-o", tmp_path / "s.png")
    assert rc == 0, err


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["eval", "{run}", "--batch-size", "0"], "argument --batch-size: must be an integer >= 1, got 0"),
        (["eval", "{run}", "-n", "-5"], "argument -n: must be an integer in 1..1000000, got -5"),
        (["eval", "{run}", "--min-domain-accuracy", "nan"], "must be a finite number, got nan"),
        (["eval", "{run}", "--min-domain-accuracy", "2"], "must be a number in [0, 1], got 2"),
        (["score", "{run}", "--max-items", "-1"], "argument --max-items: must be an integer >= 1, got -1"),
        (["score", "{run}", "--threshold", "inf"], "must be a finite number, got inf"),
        (["metrics", "kid", "shapes", "shapes", "--batch-size", "0"], "must be an integer >= 1, got 0"),
        (["metrics", "psnr", "a", "b", "--shave", "-1"], "must be an integer >= 0, got -1"),
        (["translate", "{run}", "x", "-o", "out", "--size", "99999"], "must be an integer in 0..8192"),
        (["generate", "{run}", "a red circle", "-n", "1000000000"], "must be an integer in 1..4096"),
        (["train", "vanilla", "--nproc", "0"], "argument --nproc: must be an integer >= 1, got 0"),
        (["train", "vanilla", "--eval-n", str(2**70)], "eval_n must be in 2..1,000,000"),
        (["train", "vanilla", "--steps", str(2**70)], "steps must be in 1..9,007,199,254,740,992 (2^53), got"),
        (["train", "srgan", "--set", "image_size=16", "--set", "batch_size=1"], "batch norm one value per channel"),
        (["train", "attngan", "--set", "batch_size=1"], "batch_size must be >= 2 (DAMSM"),
        (["train", "attngan", "--set", "gamma1=0"], "gamma1 must be > 0"),
        (["train", "pix2pix", "--set", "init_gain=-1"], "init_gain must be > 0"),
        (["train", "cyclegan", "--set", "image_size=16"], "netD=basic with 3 stride-2 layers needs image_size >= 24"),
        (
            ["train", "cyclegan", "--set", "n_layers_D=2"],
            "n_layers_D=2 applies to netD=n_layers only, but netD=basic; add --set netD=n_layers",
        ),
        (["eval", "{run}", "-n", str(2**70)], "argument -n: must be an integer in 1..1000000"),
        (["data", "show", "shapes", "--size", str(2**70)], "argument --size: must be an integer in 0..8192"),
        (
            [
                "import-weights",
                "attngan",
                "{run}/model.safetensors",
                "-o",
                "m.safetensors",
                "--set",
                "encoder_backbone=nan",
            ],
            "unknown encoder_backbone 'nan'",
        ),
        (
            ["import-weights", "attngan", "{run}/model.safetensors", "-o", "m.safetensors", "--set", "local_index=4"],
            "0..3",
        ),
        (
            [
                "import-weights",
                "pix2pix",
                "{run}/model.safetensors",
                "-o",
                "m.safetensors",
                "--set",
                "image_size=32",
                "--set",
                "netG=unet_32",
                "--set",
                "netD=n_layers",
                "--set",
                "n_layers_D=4",
            ],
            "needs image_size >= 48, got 32",
        ),
    ],
)
def test_option_values_out_of_range(trained, argv, needle):
    assert needle in refused(*[a.replace("{run}", str(trained)) for a in argv])


# ---- files -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text,needle",
    [
        (b"- 1\n- 2\n", "must hold a mapping of key: value, not a list"),
        (b"hello\n", "must hold a mapping of key: value, not a str"),
        (b"model: 3\n", "section model: must hold a mapping of config field: value, got 3"),
        (b"train: [1]\n", "section train: must hold a mapping of training setting: value"),
        (b"data: {a: 1}\n", "section data: must hold a data spec string"),
        (b"model:\n  1: 2\n", "section model: must hold a mapping"),
        (b"other: 1\n", "key 'other' is not valid; use model:, train:, data:"),
        (b"model:\n  nz: \xff\xfe\n", "is not UTF-8 text (byte 13)"),
        (b"a: [1\n", "is not valid YAML at line 2"),
        (b"train:\n  seed: 99999999999999999999999\n", "seed must be an integer in 0..4294967295"),
        (b"model:\n  lr_g: .nan\n", "lr_g: nan is not a finite number"),
    ],
)
def test_config_files_of_the_wrong_shape(tmp_path, text, needle):
    path = tmp_path / "c.yaml"
    path.write_bytes(text)
    assert needle in refused("train", "vanilla", "--config", path, "--steps", 1, "--out", tmp_path / "run")


def test_load_yaml_without_sections_reads_any_mapping(tmp_path):
    (tmp_path / "c.yaml").write_text("anything: [1, 2]\n")
    assert load_yaml(tmp_path / "c.yaml") == {"anything": [1, 2]}


def test_a_log_that_is_not_utf8_plots_its_readable_lines(trained, tmp_path):
    log = tmp_path / "log.jsonl"
    log.write_bytes((trained / "log.jsonl").read_bytes() + b"\xff\xfe{not json\n")
    rc, out, err = run("plot", log, "-o", tmp_path / "l.png")
    assert rc == 0, err
    assert (tmp_path / "l.png").is_file()


def test_outputs_that_cannot_be_written(trained, tmp_path):
    (tmp_path / "file").write_text("x")
    (tmp_path / "folder").mkdir()
    assert "is a file, not a folder" in refused("sample", trained, "-n", 2, "-o", tmp_path / "file" / "s.png")
    assert "is a folder" in refused("sample", trained, "-n", 2, "-o", tmp_path / "folder")
    assert "is a folder" in refused("export", trained, "-o", tmp_path / "folder")
    assert "is a file, not a folder" in refused("train", "vanilla", "--steps", 1, "--out", tmp_path / "file")
    assert "is a file, not a folder" in refused("train", "vanilla", "--steps", 1, "--out", tmp_path / "file" / "r")
    assert "image format" in refused("plot", trained, "-o", tmp_path / "losses.safetensors")
    assert (tmp_path / "file").read_text() == "x" and not any((tmp_path / "folder").iterdir())


def test_outputs_under_missing_folders_are_made(trained, tmp_path):
    rc, _, err = run("sample", trained, "-n", 2, "-o", tmp_path / "a" / "b" / "s.png")
    assert rc == 0, err
    assert (tmp_path / "a" / "b" / "s.png").is_file()


# ---- architectures ---------------------------------------------------------------------------------------------------


def test_resume_with_another_architecture_names_the_fields(trained):
    err = refused("train", "vanilla.ring8", "--resume", "--steps", 4, "--out", trained, "--set", "nz=3")
    assert "was trained with another architecture: nz=2 (now 3)" in err
    assert "size mismatch" not in err


def test_config_differences_reads_the_record_by_field_type():
    from plugins.ganzoo_dcgan.variant import DCGANConfig

    live = apply_overrides(DCGANConfig(), {"ngf": 16, "lr_g": 1e-3})
    assert config_differences({"ngf": 8, "lr_g": "0.001", "nosuch": 1}, live) == ["ngf=8 (now 16)"]
    assert config_differences([1], live) == []


def test_a_model_file_of_another_shape_names_the_tensor(trained):
    from ganzoo.api import _rebuild
    from ganzoo.train import checkpoint as ckpt

    tensors, meta = ckpt.load_tensors(trained / "model.safetensors")
    key = next(k for k in tensors if k.startswith("model/") and tensors[k].dim() == 2)
    tensors[key] = torch.zeros(tensors[key].shape[0] + 1, tensors[key].shape[1])
    with pytest.raises(CheckpointError, match=f"{key.removeprefix('model/')} is \\(") as e:
        _rebuild(tensors, meta, "m.safetensors", "model/")
    assert "Error(s) in loading" not in str(e.value)


# ---- memory ----------------------------------------------------------------------------------------------------------


def test_an_allocation_failure_is_one_line(monkeypatch):
    import ganzoo.cli

    def huge(args: argparse.Namespace) -> int:
        raise RuntimeError(
            "[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: you tried to "
            "allocate 5119999999948800 bytes. Error code 12 (Cannot allocate memory)"
        )

    monkeypatch.setattr(ganzoo.cli, "cmd_list", huge)
    err = refused("list")
    assert "not enough memory (4,768,371.6 GiB asked for)" in err


def test_other_runtime_errors_keep_their_traceback(monkeypatch):
    import ganzoo.cli

    def bug(args: argparse.Namespace) -> int:
        raise RuntimeError("a bug, not a user mistake")

    monkeypatch.setattr(ganzoo.cli, "cmd_list", bug)
    with pytest.raises(RuntimeError, match="a bug"):
        run("list")


# ---- the argument types themselves -----------------------------------------------------------------------------------


def test_argument_types():
    assert cliargs.seed_int("4_294_967_295") == 2**32 - 1
    assert cliargs.positive_int("3") == 3 and cliargs.nonnegative_int("0") == 0
    assert cliargs.bounded_int(1, 4)("4") == 4
    assert cliargs.fraction("0.95") == 0.95 and cliargs.finite_float("-2") == -2.0
    assert cliargs.device_arg("auto") in ("cpu", "cuda")
    for parse, text in [
        (cliargs.positive_int, "0"),
        (cliargs.positive_int, "1.5"),
        (cliargs.nonnegative_int, "-1"),
        (cliargs.bounded_int(1, 4), "5"),
        (cliargs.finite_float, "nan"),
        (cliargs.fraction, "1.01"),
        (cliargs.device_arg, "meta"),
        (cliargs.image_file, "out.safetensors"),
        (cliargs.image_file, "out"),
    ]:
        with pytest.raises(argparse.ArgumentTypeError):
            parse(text)
