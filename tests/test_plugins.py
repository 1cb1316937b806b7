"""The plugin manager and registry: entry points, allowlist, autoload switch, tracing, broken and conflicting
plugins, did-you-mean errors."""

import os
import subprocess
import sys
import textwrap
import warnings

import pytest
import torch

import ganzoo
from ganzoo import hookimpl, registry
from ganzoo.errors import UnknownNameError
from ganzoo.plugins import register_plugin, unregister_plugin


def run_ganzoo(*args, env_extra=None, pythonpath=None):
    env = dict(os.environ)
    env.update(env_extra or {})
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join([str(pythonpath), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-m", "ganzoo", *args], capture_output=True, text=True, env=env, timeout=120)


def make_dist(root, dist, modules: dict, entry_points: dict):
    """A minimal installed distribution on disk (dist-info + modules) so importlib.metadata finds its entry points."""
    info = root / f"{dist}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[ganzoo]\n" + "".join(f"{k} = {v}\n" for k, v in entry_points.items()))
    for name, code in modules.items():
        (root / f"{name}.py").write_text(textwrap.dedent(code))
    return root


def test_builtins_load_through_entry_points():
    plugins = {p["name"]: p for p in ganzoo.list_plugins()}
    assert {"ganzoo", "dcgan", "vanilla"} <= set(plugins)
    assert list(plugins)[0] == "ganzoo"  # the core's own plugin first, then entry points by name
    assert plugins["dcgan"]["registered"]["variant"] == ["dcgan"]
    assert plugins["dcgan"]["distribution"] == "ganzoo" and plugins["dcgan"]["version"] == ganzoo.__version__
    assert "standard" in plugins["ganzoo"]["registered"]["loss"]
    assert plugins["ganzoo"]["module"] == "ganzoo.builtins"


def test_the_core_plugin_loads_even_under_the_allowlist():
    r = run_ganzoo("plugins", "--json", env_extra={"GANZOO_PLUGINS": "vanilla"})
    assert r.returncode == 0, r.stderr
    import json

    assert [p["name"] for p in json.loads(r.stdout)] == ["ganzoo", "vanilla"]


def test_list_variants_patterns_and_task():
    assert "dcgan" in ganzoo.list_variants()
    assert "dcgan.mnist" in ganzoo.list_variants("dcgan*")
    assert all(n.startswith("dcgan") for n in ganzoo.list_variants("dcgan*"))
    assert ganzoo.list_variants("*ring*") == ["vanilla.ring8"]
    assert "dcgan" in ganzoo.list_variants(task="unconditional")
    with pytest.raises(UnknownNameError, match="unconditional"):
        ganzoo.list_variants(task="unconditionl")


def test_unknown_names_suggest_closest():
    with pytest.raises(UnknownNameError, match="Did you mean 'dcgan'"):
        ganzoo.create("dcgam")
    with pytest.raises(UnknownNameError, match="dcgan.mnist"):
        ganzoo.create("dcgan.mnsit")
    with pytest.raises(UnknownNameError, match="Did you mean 'ngf'"):
        ganzoo.create("dcgan", ngff=3)


def test_tag_applies_preset_and_overrides_win():
    v = ganzoo.create("dcgan.mnist")
    assert (v.config.image_size, v.config.channels) == (28, 1)
    v = ganzoo.create("dcgan.mnist", channels=3, ngf=8, ndf=8)
    assert v.config.channels == 3 and v.G(torch.randn(2, 100, 1, 1)).shape == (2, 3, 28, 28)


TINY_TRAIN = {"dcgan": ["--set", "ngf=8", "--set", "ndf=8", "--set", "image_size=32"], "vanilla": ["--set", "nz=8"]}
FAST = ["--device", "cpu", "--precision", "fp32", "--no-progress"]


class _Conflict:
    """Claims the name ``dcgan`` (registered first by the dcgan plugin) beside a name of its own."""

    @hookimpl
    def ganzoo_register_variants(self, register):
        from ganzoo_dcgan.variant import DCGAN

        register(DCGAN)

    @hookimpl
    def ganzoo_register_datasets(self, register):
        register("conflict-data", lambda arg, request: None, tasks=("unconditional",), help="never used")


def test_a_name_claimed_twice_disables_the_later_plugin_with_one_warning(tmp_path, capsys):
    from ganzoo.cli import main

    register_plugin(_Conflict(), "conflicting")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            plugins = {p["name"]: p for p in ganzoo.list_plugins()}
        messages = [str(w.message) for w in caught if "conflicting" in str(w.message)]
        assert messages == [
            "ganzoo plugin 'conflicting' is disabled: the variant name 'dcgan' is registered by two plugins, 'dcgan' "
            "and 'conflicting'; uninstall one or choose with GANZOO_PLUGINS"
        ]
        # disabled as a whole: its other registrations are gone too, and the first plugin keeps the name
        assert "conflict-data" not in registry.datasets()
        assert registry.variants()["dcgan"].plugin == "dcgan"
        assert plugins["conflicting"]["registered"] == {} and "'dcgan'" in plugins["conflicting"]["error"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for name in ("dcgan", "vanilla"):  # the contested name and an unrelated one both train
                out = tmp_path / name
                argv = ["train", name, *TINY_TRAIN[name], "--batch-size", "4", "--steps", "1", *FAST, "--out", str(out)]
                assert main(argv) == 0, capsys.readouterr().err
                assert (out / "model.safetensors").is_file()
    finally:
        unregister_plugin("conflicting")
    assert "conflicting" not in {p["name"] for p in ganzoo.list_plugins()}


class _RaisesInOneHook:
    """Registers a dataset fine, then raises in its commands hook."""

    @hookimpl
    def ganzoo_register_datasets(self, register):
        register("half-data", lambda arg, request: None, tasks=("unconditional",), help="never used")

    @hookimpl
    def ganzoo_register_commands(self, register):
        raise RuntimeError("config file missing")

    @hookimpl
    def ganzoo_train_event(self, event, trainer, info):
        raise AssertionError("a disabled plugin's hooks must not be called")


def test_a_hook_that_raises_disables_the_whole_plugin(tmp_path):
    register_plugin(_RaisesInOneHook(), "half-broken")
    try:
        with pytest.warns(UserWarning, match="'half-broken' failed in ganzoo_register_commands: RuntimeError"):
            datasets = registry.datasets()
        assert "half-data" not in datasets and "shapes" in datasets
        info = {p["name"]: p for p in ganzoo.list_plugins()}["half-broken"]
        assert info["registered"] == {}
        assert info["error"] == "ganzoo_register_commands: RuntimeError: config file missing"
        from ganzoo.plugins import get_plugin_manager

        assert get_plugin_manager().get_plugin("half-broken") is None  # its train-event hook is not called either
        with pytest.raises(UnknownNameError) as e:
            registry.get("dataset", "half-data")
        msg = str(e.value)
        assert "(plugins that failed to load: half-broken: ganzoo_register_commands: RuntimeError: config" in msg
        with pytest.raises(UnknownNameError, match="plugins that failed to load: half-broken"):
            ganzoo.create("dcgam")
    finally:
        unregister_plugin("half-broken")
    with pytest.raises(UnknownNameError) as e:
        ganzoo.create("dcgam")
    assert "failed to load" not in str(e.value)


class _Downloads:
    @hookimpl
    def ganzoo_register_downloads(self, register):
        register("toy-pairs", "https://example.org/data/toy-pairs.tar.gz", "aligned", help="toy pairs")


def test_plugins_register_downloadable_datasets(capsys):
    from ganzoo.cli import main

    assert registry.downloads()["facades"].plugin == "pix2pix"
    assert registry.downloads()["horse2zebra"].extra["reader"] == "unaligned"
    register_plugin(_Downloads(), "downloads")
    try:
        assert main(["data", "list"]) == 0
        line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("toy-pairs"))
        assert "aligned" in line and "https://example.org/data/toy-pairs.tar.gz" in line and "downloads" in line
    finally:
        unregister_plugin("downloads")


class _BrokenRegistration:
    @hookimpl
    def ganzoo_register_variants(self, register):
        register(object)  # not a GANVariant


def test_plugin_registering_a_broken_variant_is_reported_and_skipped():
    register_plugin(_BrokenRegistration(), "broken-reg")
    try:
        with pytest.warns(UserWarning, match="broken-reg"):
            names = ganzoo.list_variants()
        assert "dcgan" in names
        info = {p["name"]: p for p in ganzoo.list_plugins()}["broken-reg"]
        assert "GANVariant" in info["error"]
    finally:
        unregister_plugin("broken-reg")


class _Misspelt:
    @hookimpl
    def ganzoo_register_variant(self, register):  # missing "s": must not be silently ignored
        pass


def test_misspelt_hook_disables_the_plugin_loudly():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        register_plugin(_Misspelt(), "misspelt")
        try:
            plugins = {p["name"]: p for p in ganzoo.list_plugins()}
        finally:
            unregister_plugin("misspelt")
    assert "ganzoo_register_variant" in plugins["misspelt"]["error"]
    assert any("misspelt" in str(w.message) for w in caught)
    assert "dcgan" in plugins


def test_entry_point_plugin_that_fails_to_import(tmp_path):
    make_dist(
        tmp_path, "ganzoo_bad", {"ganzoo_bad": "raise ImportError('no module named torchgan')"}, {"bad": "ganzoo_bad"}
    )
    r = run_ganzoo("plugins", pythonpath=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "bad (ganzoo_bad 0.1; module ganzoo_bad): nothing" in r.stdout
    assert "ERROR: ImportError: no module named torchgan" in r.stdout
    assert "dcgan (ganzoo " in r.stdout  # the built-ins come with ganzoo's own distribution and version
    r = run_ganzoo("list", pythonpath=tmp_path)
    assert r.returncode == 0 and "dcgan" in r.stdout
    # a name the broken plugin might have provided: the error says that a plugin failed to load
    r = run_ganzoo("train", "torchgan-wgan", pythonpath=tmp_path)
    warning, error = r.stderr.strip().splitlines()  # one line each
    assert r.returncode == 2 and warning.startswith("ganzoo: warning: ganzoo plugin 'bad' failed to load")
    assert error.endswith("(plugins that failed to load: bad: ImportError: no module named torchgan)")


def test_allowlist_autoload_switch_and_tracing(tmp_path):
    r = run_ganzoo("list", env_extra={"GANZOO_PLUGINS": "dcgan"})
    assert "dcgan" in r.stdout and "vanilla" not in r.stdout
    r = run_ganzoo("list", env_extra={"GANZOO_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert r.returncode == 0 and "dcgan" not in r.stdout
    r = run_ganzoo("list", env_extra={"GANZOO_DISABLE_PLUGIN_AUTOLOAD": "1", "GANZOO_PLUGINS": "vanilla"})
    assert "vanilla" in r.stdout and "dcgan" not in r.stdout
    r = run_ganzoo("list", env_extra={"GANZOO_TRACE_PLUGINS": "1"})
    assert "ganzoo_register_variants" in r.stderr


def test_loading_is_lazy_and_idempotent():
    from ganzoo.plugins import get_plugin_manager

    assert get_plugin_manager() is get_plugin_manager()
    assert registry.variants() is registry.variants()
