"""`ganzoo install` pip-installs a package into ganzoo's environment and reports what it registered."""

import subprocess
import sys

import ganzoo.cli as cli
from ganzoo.plugins import reset


def test_install_reports_new_variants(tmp_path, monkeypatch, capsys, plugin_template):
    target = tmp_path / "site"
    calls = []

    def fake_pip(*args):
        # Install for real, but into a throw-away folder put on sys.path instead of the test environment.
        calls.append(args)
        if args[0] == "uninstall":
            sys.path.remove(str(target))
            return 0
        cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target"]
        rc = subprocess.call([*cmd, str(target), *[a for a in args[1:] if not a.startswith("-")]])
        sys.path.insert(0, str(target))
        return rc

    monkeypatch.setattr(cli, "_pip", fake_pip)
    try:
        assert cli.main(["install", str(plugin_template)]) == 0
        out = capsys.readouterr().out
        assert "plugin toygan (ganzoo-toygan 0.1.0): variant toygan" in out
        assert cli.main(["uninstall", "-y", "ganzoo-toygan"]) == 0
        assert calls[-1] == ("uninstall", "-y", "ganzoo-toygan")
    finally:
        if str(target) in sys.path:
            sys.path.remove(str(target))
        reset()


def test_failed_install_is_one_line(monkeypatch, capsys):
    monkeypatch.setattr(cli, "_pip", lambda *a: 1)
    assert cli.main(["install", "ganzoo-does-not-exist"]) == 2
    err = capsys.readouterr().err
    assert "pip install ganzoo-does-not-exist failed" in err and "Traceback" not in err
