"""The ganzoo command: every user mistake is one line on stderr with exit status 2, no traceback."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ganzoo import hookimpl
from ganzoo.cli import main
from ganzoo.config import apply_overrides, parse_assignments
from ganzoo.errors import GanzooError

TINY = ["--set", "ngf=8", "--set", "ndf=8", "--set", "nz=8", "--set", "image_size=32", "--batch-size", "4"]
FAST = ["--device", "cpu", "--precision", "fp32", "--no-progress"]


def run(capsys, *argv):
    rc = main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["train", "dcgam"], "Did you mean 'dcgan'"),
        (["train", "dcgan", "--set", "ngff=3"], "Did you mean 'ngf'"),
        (["train", "dcgan", "--set", "ngf=abc"], "ngf: 'abc' is not an integer"),
        (["train", "dcgan", "--set", "ngf"], "not of the form key=value"),
        (["train", "dcgan", "--set", "loss=hnge"], "Did you mean 'hinge'"),
        (["train", "dcgan", "--data", "shapez"], "Did you mean 'shapes'"),
        (["train", "dcgan", "--data", "mnist:/does/not/exist"], "/does/not/exist"),
        (["train", "dcgan", "--steps", "0"], "steps must be >= 1"),
        (["train", "dcgan", "--device", "tpu"], "device 'tpu'"),
        (["train", "dcgan", "--precision", "fp8"], "invalid choice: 'fp8'"),
        (["train", "dcgan", "--config", "/nope.yaml"], "does not exist"),
        (["info", "dcgan.mnst"], "dcgan.mnist"),
        (["sample", "/no/such/model.safetensors"], "does not exist"),
        (["list", "--task", "paird"], "unknown task"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_user_mistakes_exit_2_with_one_line(capsys, argv, needle):
    rc, out, err = run(capsys, *argv)
    assert rc == 2
    assert needle in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_list_info_plugins_json(capsys):
    rc, out, _ = run(capsys, "list", "dcgan*", "--json")
    assert rc == 0 and {r["name"] for r in json.loads(out)} >= {"dcgan", "dcgan.mnist"}
    rc, out, _ = run(capsys, "info", "dcgan.mnist", "--json")
    info = json.loads(out)
    fields = {f["name"]: f for f in info["config"]}
    assert info["task"] == "unconditional" and fields["image_size"]["default"] == 28 and fields["ngf"]["help"]
    rc, out, _ = run(capsys, "plugins", "--json")
    assert rc == 0 and any(p["name"] == "dcgan" for p in json.loads(out))
    rc, out, _ = run(capsys, "datasets")
    assert rc == 0 and "shapes" in out


def test_train_resume_sample_export(capsys, tmp_path):
    out_dir = tmp_path / "run"
    rc, out, err = run(capsys, "train", "dcgan", *TINY, *FAST, "--steps", "2", "--out", str(out_dir))
    assert rc == 0, err
    assert "model:" in out and "ganzoo sample" in out
    rc, _, err = run(capsys, "train", "dcgan", *TINY, *FAST, "--steps", "2", "--out", str(out_dir))
    assert rc == 2 and "--resume" in err
    rc, out, err = run(capsys, "train", "dcgan", *TINY, *FAST, "--steps", "3", "--out", str(out_dir), "--resume")
    assert rc == 0, err
    assert "done: 3 steps" in out
    rc, out, err = run(capsys, "sample", str(out_dir), "-n", "4", "-o", str(tmp_path / "s.png"))
    assert rc == 0 and (tmp_path / "s.png").stat().st_size > 0
    rc, out, err = run(capsys, "export", str(out_dir), "-o", str(tmp_path / "m.safetensors"))
    assert rc == 0 and (tmp_path / "m.safetensors").is_file()
    rc, out, err = run(capsys, "sample", str(tmp_path / "m.safetensors"), "-n", "2", "-o", str(tmp_path / "t.png"))
    assert rc == 0, err


def test_yaml_config(capsys, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("model:\n  arch: keras\n  nz: 8\ntrain:\n  steps: 2\n  batch_size: 4\ndata: shapes\n")
    rc, out, err = run(capsys, "train", "vanilla", "--config", str(cfg), *FAST, "--out", str(tmp_path / "r"))
    assert rc == 0, err
    assert "2 steps" in out
    bad = tmp_path / "bad.yaml"
    bad.write_text("modle: {}\n")
    rc, _, err = run(capsys, "train", "vanilla", "--config", str(bad))
    assert rc == 2 and "modle" in err


def test_parse_values_by_type():
    from ganzoo_dcgan.variant import DCGANConfig

    c = apply_overrides(DCGANConfig(), {"ngf": "32", "lr_g": "1e-4", "spectral_norm": "true", "loss": "hinge"})
    assert (c.ngf, c.lr_g, c.spectral_norm, c.loss) == (32, 1e-4, True, "hinge")
    assert parse_assignments(["a=b=c"]) == {"a": "b=c"}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(
        st.sampled_from(["ngf", "lr_g", "spectral_norm", "loss", "pack", "nz", "bogus"]), st.text(max_size=12)
    )
)
def test_fuzz_override_parser_raises_only_user_errors(overrides):
    from ganzoo_dcgan.variant import DCGANConfig

    try:
        apply_overrides(DCGANConfig(), overrides)
    except GanzooError:
        pass  # a clear user error is fine; anything else (TypeError, ZeroDivisionError ...) is a bug


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.one_of(
            st.sampled_from(["list", "info", "plugins", "datasets", "--json", "--task", "dcgan", "x", "*", "-n"]),
            st.text(min_size=1, max_size=8).filter(lambda s: not s.startswith("-") or s in ("-", "--")),
        ),
        max_size=4,
    )
)
def test_fuzz_cli_never_tracebacks(argv):
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            rc = main(argv)
        except SystemExit as e:  # --help / --version
            rc = e.code
    assert rc in (0, 2), (argv, err.getvalue())
    assert "Traceback" not in err.getvalue()


def test_plot_draws_a_runs_losses_and_rejects_a_folder_without_a_log(tmp_path, capsys):
    from PIL import Image

    from ganzoo.utils.plots import loss_series, plot_series, read_log

    run = tmp_path / "run"
    run.mkdir()
    lines = [
        {"step": s, "stage": "train", "img_per_s": 10.0, "d/loss": 1.0 / s, "g/loss": s * 0.1, "lr/g": 2e-4}
        for s in range(1, 30)
    ]
    (run / "log.jsonl").write_text("\n".join(json.dumps(r) for r in lines) + '\n{"step": 3')  # last line cut by a crash
    series = loss_series(read_log(run))
    assert set(series) == {"d/loss", "g/loss"} and len(series["g/loss"]) == 29
    assert main(["plot", str(run), "-o", str(tmp_path / "c.png")]) == 0
    img = Image.open(tmp_path / "c.png").convert("RGB")
    # both curves are drawn in their colours
    colours = {c for _, c in img.getcolors(maxcolors=1 << 16)}
    assert (31, 119, 180) in colours and (214, 39, 40) in colours
    assert plot_series({}, "empty").size == (720, 400)
    (tmp_path / "empty").mkdir()
    assert main(["plot", str(tmp_path / "empty")]) == 2
    assert "no training log" in capsys.readouterr().err


# ---- plugin management: install, uninstall, next-step hints ---------------------------------------------------------

PLUGIN_CODE = """
from ganzoo import hookimpl

@hookimpl
def ganzoo_register_datasets(register):
    register("toy-noise", lambda arg, request: None, tasks=("unconditional",), help="toy")
"""


def write_dist(root, dist="ganzoo-toy", module="ganzoo_toy", entry="toy"):
    """An installed distribution on disk: dist-info with a ganzoo entry point, and its module."""
    info = root / f"{dist.replace('-', '_')}-0.3.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.3\n")
    (info / "entry_points.txt").write_text(f"[ganzoo]\n{entry} = {module}\n")
    (root / f"{module}.py").write_text(PLUGIN_CODE)
    return root


@pytest.fixture
def installed_plugin(tmp_path, monkeypatch):
    """A plugin distribution on this process's import path, and a pip that records its calls; uninstalling removes
    the folder from the path."""
    import sys

    import ganzoo.cli as cli
    from ganzoo.plugins import reset

    site = write_dist(tmp_path / "site")
    calls = []

    def fake_pip(*args):
        calls.append(args)
        if args[0] == "uninstall" and "--keep" not in args:
            sys.path.remove(str(site))
        return 0

    monkeypatch.setattr(cli, "_pip", fake_pip)
    sys.path.insert(0, str(site))
    reset()
    yield calls
    if str(site) in sys.path:
        sys.path.remove(str(site))
    reset()


@pytest.mark.parametrize("name", ["toy", "ganzoo-toy", "ganzoo_toy", "Ganzoo.Toy"])
def test_uninstall_takes_the_names_ganzoo_plugins_shows(installed_plugin, capsys, name):
    rc, out, _ = run(capsys, "plugins")
    assert "toy (ganzoo-toy 0.3; module ganzoo_toy): dataset: toy-noise" in out
    rc, out, err = run(capsys, "uninstall", "-y", name)
    assert rc == 0, err
    assert installed_plugin == [("uninstall", "-y", "ganzoo-toy")] and "uninstalled ganzoo-toy" in out


def test_uninstall_fails_loudly_when_nothing_is_uninstalled(installed_plugin, capsys, monkeypatch):
    import ganzoo.cli as cli

    for argv, needle in [
        (["uninstall", "-y", "toi"], "unknown installed plugin 'toi'. Did you mean 'toy'"),
        (["uninstall", "-y", "dcgan"], "'dcgan' is part of ganzoo itself"),
        (["uninstall", "-y", "ganzoo"], "'ganzoo' is part of ganzoo itself"),
    ]:
        rc, _, err = run(capsys, *argv)
        assert rc == 2 and needle in err and len(err.strip().splitlines()) == 1, err
    assert installed_plugin == []  # pip was never asked
    # pip exits 0 but removes nothing (another environment, a declined prompt)
    monkeypatch.setattr(cli, "_pip", lambda *a: 0)
    rc, _, err = run(capsys, "uninstall", "-y", "toy")
    assert rc == 2 and "nothing was uninstalled: ganzoo-toy is still installed" in err
    assert len(err.strip().splitlines()) == 1
    monkeypatch.setattr(cli, "_pip", lambda *a: 1)
    rc, _, err = run(capsys, "uninstall", "-y", "toy")
    assert rc == 2 and "pip uninstall ganzoo-toy failed with exit code 1" in err


def test_editable_install_reports_what_the_new_plugin_registered(tmp_path, monkeypatch, capsys):
    """An editable install becomes visible to interpreters started after it (its .pth file is read at start-up), not
    to the running one: the fake pip puts the plugin where only a new process finds it."""
    import importlib.metadata
    import os

    import ganzoo.cli as cli

    project = tmp_path / "project"
    project.mkdir()
    calls = []

    def fake_pip(*args):
        calls.append(args)
        site = write_dist(tmp_path / "site")
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
        return 0

    monkeypatch.setattr(cli, "_pip", fake_pip)
    rc, out, err = run(capsys, "install", "-e", str(project))
    assert rc == 0, err
    assert calls == [("install", "-e", str(project))]
    with pytest.raises(importlib.metadata.PackageNotFoundError):
        importlib.metadata.distribution("ganzoo-toy")  # indeed invisible to this process
    assert out.strip() == "plugin toy (ganzoo-toy 0.3): dataset toy-noise"


class _Hints:
    @hookimpl
    def ganzoo_register_commands(self, register):
        register(
            "paint", "paint with a noise model", lambda p: p.add_argument("model"), print, tasks=("unconditional",)
        )
        register("fix", "fix a paired model", lambda p: p.add_argument("model"), print, tasks=("paired",))


def test_train_suggests_the_commands_registered_for_the_models_task(capsys, tmp_path):
    from ganzoo.plugins import register_plugin, unregister_plugin

    register_plugin(_Hints(), "hints")
    try:
        rc, out, err = run(capsys, "train", "dcgan", *TINY, *FAST, "--steps", "1", "--out", str(tmp_path / "r"))
        assert rc == 0, err
        model = tmp_path / "r" / "model.safetensors"
        nxt = out[out.index("next:") :]
        assert f"ganzoo sample {model} -n 64" in nxt
        assert f"ganzoo paint {model} ...    # paint with a noise model" in nxt
        assert "ganzoo fix" not in nxt
    finally:
        unregister_plugin("hints")


class _BadTask:
    @hookimpl
    def ganzoo_register_commands(self, register):
        register("oops", "a command for a task that does not exist", lambda p: None, print, tasks=("paird",))


def test_a_command_for_an_unknown_task_disables_its_plugin(capsys):
    import warnings

    from ganzoo import registry
    from ganzoo.plugins import register_plugin, unregister_plugin

    register_plugin(_BadTask(), "bad-task")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert "oops" not in registry.commands()
        assert any("'paird' is not a valid Task" in str(w.message) for w in caught)
    finally:
        unregister_plugin("bad-task")


class _BrokenConfigure:
    @hookimpl
    def ganzoo_register_commands(self, register):
        def configure(parser):
            raise NameError("name 'HELP_TEXT' is not defined")

        register("broken", "a command whose configure() raises", configure, print)
        register("fine", "a working command of the same plugin", lambda p: p.add_argument("word"), print)


def test_a_command_whose_configure_raises_is_left_out_and_the_rest_works(capsys, tmp_path):
    from ganzoo.plugins import register_plugin, unregister_plugin

    register_plugin(_BrokenConfigure(), "broken-configure")
    try:
        rc, out, err = run(capsys, "list")
        assert rc == 0 and "dcgan" in out
        assert "command 'broken' of plugin 'broken-configure' is left out: its configure() raised NameError" in err
        assert run(capsys, "fine", "hello")[0] == 0
        rc, out, err = run(capsys, "broken")
        assert rc == 2 and "invalid choice: 'broken'" in err
    finally:
        unregister_plugin("broken-configure")
