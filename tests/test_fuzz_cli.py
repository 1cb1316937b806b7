"""Fuzz every ``ganzoo`` command, core and plugin, with arguments drawn from its own options.

For each command of :func:`ganzoo.cli.build_parser` (nested ones such as ``data show`` included) hypothesis draws
argument lists: each option and positional gets values of its kind, valid and not (negative, zero and huge
integers, nan and inf, junk text, missing files, folders where files are expected, files where folders are, YAML of
the wrong shape, text that is not UTF-8, devices that do not exist), and ``--set FIELD=VALUE`` draws its fields from
every variant's config. ``ganzoo.cli.main`` must return 0, 1, 2 or 130 and never raise, and nothing may be written
outside the test's folder.

Work that the arguments only lead up to is cut short at its door, so the file stays fast: ``Trainer.fit`` (after
the run is configured, its data opened and its model built), the benchmark runner, pip, torchrun and the network.
An example reaching one of them counts as accepted.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import os
import shlex
import shutil
import signal
import urllib.error
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ganzoo import registry
from ganzoo.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
# Per command: ~25 commands x 10 examples keeps the file under a minute single-process; GANZOO_FUZZ_EXAMPLES=200
# (and derandomize off, with GANZOO_FUZZ_RANDOM=1) searches longer.
EXAMPLES = int(os.environ.get("GANZOO_FUZZ_EXAMPLES", "10"))
DERANDOMIZE = os.environ.get("GANZOO_FUZZ_RANDOM") != "1"
SLOW_EXAMPLE_S = 60  # an example past this is a hang (a FIFO opened, a loop without end), not a slow machine


class Reached(Exception):
    """A stubbed boundary was reached with arguments that passed every check."""


def _commands() -> list[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    def subparsers(p: argparse.ArgumentParser) -> argparse._SubParsersAction | None:
        return next((a for a in p._actions if isinstance(a, argparse._SubParsersAction)), None)

    out = []
    for name, p in subparsers(build_parser()).choices.items():
        nested = subparsers(p)
        if nested is None:
            out.append(((name,), p))
        else:
            out.extend(((name, n), q) for n, q in nested.choices.items())
    return out


COMMANDS = _commands()


def _config_fields() -> list[str]:
    names: set[str] = set()
    for spec in registry.variants().values():
        names.update(f.name for f in dataclasses.fields(spec.cls.Config))
    return sorted(names)


FIELDS = _config_fields()
VARIANTS = sorted(registry.list_variants())
INTS = ["-1", "0", "1", "2", "3", str(2**70), "-" + str(2**70), "x", "nan", "1.5", "", "1e3"]
FLOATS = ["-1", "0", "0.5", "1", "2", "nan", "inf", "-inf", "1e999", "x", ""]
JUNK = ["nan", "inf", "-inf", "-1", "0", "1", "99999999999", "x", "", "[1", "true", "1e999", "0.5", "null", "[]"]


@dataclasses.dataclass
class World:
    """The files the draws point at, all under one temporary folder."""

    root: Path
    run: Path
    model: Path
    images: Path
    image: Path
    empty: Path
    text: Path
    binary: Path
    damaged: Path
    yamls: list[Path]

    def paths(self) -> list[str]:
        files = (self.run, self.model, self.images, self.image, self.empty, self.text, self.binary, self.damaged)
        return [str(p) for p in files]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("fuzz")
    home = root / "home"
    with pytest.MonkeyPatch.context() as mp:
        for var in ("HOME", "XDG_CACHE_HOME", "GANZOO_CACHE", "GANZOO_DATA", "TORCH_HOME"):
            mp.setenv(var, str(home / var.lower()))
        mp.chdir(root)
        torch.manual_seed(0)
        run = root / "run"
        argv = ["train", "vanilla.ring8", "--steps", "2", "--batch-size", "8", "--out", str(run), "--no-progress"]
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            assert main([*argv, "--device", "cpu", "--precision", "fp32"]) == 0
        damaged = root / "damaged"  # the run with a run.json and a log line that are not UTF-8
        shutil.copytree(run, damaged)
        (damaged / "run.json").write_bytes(b"\xff\xfe{}")
        with open(damaged / "log.jsonl", "ab") as f:
            f.write(b"\xff\xfe{not json\n")
        from PIL import Image

        images = root / "images"
        images.mkdir()
        Image.new("RGB", (16, 16), (200, 30, 30)).save(images / "a.png")
        (root / "empty").mkdir()
        (root / "text.txt").write_text("not a model\n")
        (root / "binary.png").write_bytes(b"\xff\xfe\x00garbage")
        yamls = []
        for i, text in enumerate(
            [
                b"model:\n  nz: 4\ntrain:\n  steps: 1\n",
                b"- 1\n- 2\n",
                b"just a string\n",
                b"model: 3\n",
                b"train: [1]\n",
                b"data: {a: 1}\n",
                b"model:\n  1: 2\n",
                b"other: 1\n",
                b"model:\n  nz: \xff\xfe\n",
                b"a: [1\n",
                b"train:\n  seed: 99999999999999999999999\n",
                b"model:\n  lr_g: .nan\n",
            ]
        ):
            (root / f"c{i}.yaml").write_bytes(text)
            yamls.append(root / f"c{i}.yaml")
        yield World(
            root=root,
            run=run,
            model=run / "model.safetensors",
            images=images,
            image=images / "a.png",
            empty=root / "empty",
            text=root / "text.txt",
            binary=root / "binary.png",
            damaged=damaged,
            yamls=yamls,
        )


@pytest.fixture
def stubs(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Cut the long or outward-reaching work short at its door (see the module docstring)."""

    def reached(*args: object, **kwargs: object) -> None:
        raise Reached()

    def offline(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("no network in the fuzz")

    import ganzoo.bench
    import ganzoo.cli
    import ganzoo.train.distributed
    from ganzoo.train import Trainer

    monkeypatch.setattr(Trainer, "fit", reached)
    monkeypatch.setattr(ganzoo.bench, "run", reached)
    monkeypatch.setattr(ganzoo.cli, "_pip", lambda *a: 1)
    monkeypatch.setattr(ganzoo.train.distributed, "relaunch", reached)
    monkeypatch.setattr(urllib.request, "urlopen", offline)


def _values(action: argparse.Action, command: tuple[str, ...], w: World) -> st.SearchStrategy[str]:
    """Values of the kind ``action`` takes, valid and not."""
    dest, kind = action.dest, getattr(action.type, "__name__", "")
    out_paths = [str(w.root / "out" / "x.png"), str(w.root / "o.safetensors"), str(w.empty), str(w.text)]
    out_paths += [str(w.text / "below"), str(w.root / "new-folder"), ""]
    if action.choices is not None:
        return st.sampled_from([str(c) for c in action.choices] + ["junk", ""])
    if dest == "set":
        return st.builds(lambda k, v: f"{k}={v}", st.sampled_from([*FIELDS, "nosuch", ""]), st.sampled_from(JUNK))
    if dest == "config":
        return st.sampled_from([str(p) for p in w.yamls] + [str(w.empty), str(w.root / "missing.yaml")])
    if dest == "device":
        return st.sampled_from(["cpu", "auto", "nosuch", "cuda:7", "meta", ""])
    if dest in ("output", "out", "save", "csv", "pictures", "attention_maps", "root", "folder"):
        return st.sampled_from(out_paths)
    if dest in ("name", "names", "variant") and command[0] != "metrics":
        return st.sampled_from([*VARIANTS, "nosuch", "dcgan.nosuch", "", str(w.run), str(w.model)])
    if dest == "name":  # metrics
        return st.sampled_from([*sorted(registry.metrics()), "list", "nosuch"])
    if dest in ("model", "run", "file", "files", "inputs", "a", "b", "inception_weights", "log"):
        return st.sampled_from([*w.paths(), str(w.root / "missing"), ""])
    if dest in ("data", "spec", "domain"):
        specs = ["shapes", "nosuch", "mnist:/nonexistent", f"folder:{w.empty}", "shapes:junk", "", "shapes@nosplit"]
        return st.sampled_from(specs if dest != "domain" else specs[1:])
    if kind in ("int", "positive_int", "nonnegative_int", "seed_int") or kind.startswith("int in"):
        return st.sampled_from(INTS)
    if kind in ("float", "finite_float", "fraction"):
        return st.sampled_from(FLOATS)
    if dest == "packages":
        return st.sampled_from(["ganzoo", "nosuch-plugin", "dcgan", "-e", ""])
    return st.sampled_from(["x", "", "-", "../..", "a:b@c", "0", "a red circle", "x" * 300])


@st.composite
def _argv(draw: st.DrawFn, command: tuple[str, ...], parser: argparse.ArgumentParser, w: World) -> list[str]:
    argv = list(command)
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        if not action.option_strings:
            if draw(st.integers(0, 9)) == 0:
                continue  # a missing positional is a mistake too
            count = 1 if action.nargs in (None, "?") else draw(st.integers(0 if action.nargs == "*" else 1, 2))
            argv += [draw(_values(action, command, w)) for _ in range(count)]
        elif draw(st.integers(0, 2)) == 0:
            flag = draw(st.sampled_from(action.option_strings))
            argv += [flag] if action.nargs == 0 else [flag, draw(_values(action, command, w))]
    return argv


def _run(argv: list[str]) -> int:
    def hang(*_: object) -> None:
        raise AssertionError(f"ganzoo {' '.join(argv)} ran past {SLOW_EXAMPLE_S} s")

    previous = signal.signal(signal.SIGALRM, hang)
    signal.alarm(SLOW_EXAMPLE_S)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()) as err:
            try:
                rc = main(argv)
            except Reached:
                return 0
            except Exception as e:  # the finding: name the command line, keep the traceback as the cause
                raise AssertionError(f"ganzoo {shlex.join(argv)} raised {type(e).__name__}: {e}") from e
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert isinstance(rc, int) and rc in (0, 1, 2, 130), (argv, rc, err.getvalue()[-2000:])
    if rc == 2:
        assert "Traceback" not in err.getvalue(), (argv, err.getvalue()[-2000:])
    return rc


def _outside_outputs() -> set[str]:
    """What a stray relative or default output would create in the repository."""
    names = {"samples.png", "generated.png", "data.png", "metrics.json", "run.json", "log.jsonl", "x.png"}
    found = {p.name for p in ROOT.iterdir() if p.name in names}
    for folder in ("runs", "benchmarks/results"):
        if (ROOT / folder).is_dir():
            found |= {f"{folder}/{p.name}" for p in (ROOT / folder).iterdir()}
    return found


@pytest.fixture(scope="module")
def no_outside_writes() -> Iterator[None]:
    before = _outside_outputs()
    yield
    assert _outside_outputs() == before


FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=DERANDOMIZE,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.mark.parametrize("command,parser", COMMANDS, ids=[" ".join(c) for c, _ in COMMANDS])
def test_every_command_survives_drawn_arguments(command, parser, world, stubs, no_outside_writes):
    @FUZZ
    @given(st.data())
    def check(data: st.DataObject) -> None:
        _run(data.draw(_argv(command, parser, world)))

    check()


def _override_strategy(w: World) -> st.SearchStrategy[list[str]]:
    def for_variant(name: str) -> st.SearchStrategy[list[str]]:
        spec, _, _ = registry.resolve(name)
        fields = [f.name for f in dataclasses.fields(spec.cls.Config)]
        pair = st.builds(lambda k, v: ["--set", f"{k}={v}"], st.sampled_from(fields), st.sampled_from(JUNK))
        out = str(w.root / "imported.safetensors")
        return st.lists(pair, min_size=1, max_size=3).map(
            lambda sets: ["import-weights", name, str(w.model), "-o", out, *[x for s in sets for x in s]]
        )

    return st.sampled_from(VARIANTS).flatmap(for_variant)


@settings(
    max_examples=4 * EXAMPLES,
    deadline=None,
    database=None,
    derandomize=DERANDOMIZE,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_config_overrides_of_every_variant(data, world, stubs, no_outside_writes):
    """``--set FIELD=junk`` over every variant's own fields: the variant is configured and built (import-weights
    then refuses the file, which is of another architecture), or the value is refused in one line."""
    _run(data.draw(_override_strategy(world)))


def test_a_real_tiny_training_run_passes_the_same_checks(tmp_path, monkeypatch):
    """The stubs cut training short; one real run of one step shows the options the fuzz accepts do train."""
    monkeypatch.chdir(tmp_path)
    argv = ["train", "vanilla.ring8", "--steps", "1", "--batch-size", "4", "--seed", str(2**32 - 1)]
    argv += ["--out", str(tmp_path / "r"), "--device", "cpu", "--precision", "fp32", "--no-progress"]
    assert _run(argv) == 0
    assert (tmp_path / "r" / "model.safetensors").is_file()


def _small_value(tp: object) -> st.SearchStrategy[str]:
    """Values a user might plausibly give a field of type ``tp``: small, so that a tiny model stays tiny."""
    text = str(tp)
    if "bool" in text:
        return st.sampled_from(["true", "false", "x"])
    if "int" in text:
        return st.sampled_from(["0", "1", "2", "3", "5", "-1", "none"])
    if "float" in text:
        return st.sampled_from(["0", "0.5", "1", "2", "-0.5", "1e-8"])
    return st.sampled_from(["x", "", "none", "auto"])


def _tiny_training(w: World) -> st.SearchStrategy[list[str]]:
    import typing

    from ganzoo.testing import stage_steps

    def for_family(name: str) -> st.SearchStrategy[list[str]]:
        spec, _, _ = registry.resolve(name)
        hints = typing.get_type_hints(spec.cls.Config)
        base = [x for k, v in spec.cls.tiny.items() for x in ("--set", f"{k}={v}")]
        steps = str(stage_steps(name))
        field = st.sampled_from(sorted(hints)).flatmap(
            lambda k: _small_value(hints[k]).map(lambda v: ["--set", f"{k}={v}"])
        )
        return st.tuples(field, st.integers(0, 10**6)).map(
            lambda d: (
                ["train", name, *base, *d[0], "--steps", steps, "--out", str(w.root / "tiny" / str(d[1]))]
                + ["--device", "cpu", "--precision", "fp32", "--no-progress", "--sample-every", "0"]
            )
        )

    return st.sampled_from(sorted(registry.variants())).flatmap(for_family)


@settings(
    max_examples=max(3, EXAMPLES // 3),
    deadline=None,
    database=None,
    derandomize=DERANDOMIZE,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_tiny_training_with_one_drawn_setting(data, world, no_outside_writes):
    """Real training (every stage gets a step) of a tiny variant with one config field set to a small value of its
    type: a value ``validate()`` lets through must train, a refused one is one line."""
    _run(data.draw(_tiny_training(world)))
