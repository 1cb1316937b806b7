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
from ganzoo.errors import PluginError, UnknownNameError
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
    assert plugins["dcgan"]["registered"]["variant"] == ["dcgan"]
    assert plugins["dcgan"]["distribution"] == "ganzoo"
    assert "standard" in plugins["ganzoo"]["registered"]["loss"]


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


class _Conflict:
    @hookimpl
    def ganzoo_register_variants(self, register):
        from ganzoo_dcgan.variant import DCGAN

        register(DCGAN)


def test_two_plugins_one_name_is_an_error_naming_both():
    register_plugin(_Conflict(), "conflicting")
    try:
        with pytest.raises(PluginError, match="two plugins, 'dcgan' and 'conflicting'"):
            registry.variants()
    finally:
        unregister_plugin("conflicting")
    assert "dcgan" in registry.variants()


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
    assert "bad" in r.stdout and "ERROR: ImportError: no module named torchgan" in r.stdout
    r = run_ganzoo("list", pythonpath=tmp_path)
    assert r.returncode == 0 and "dcgan" in r.stdout


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
