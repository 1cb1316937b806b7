"""The plugin template installs as its own package and its variant appears by name and trains."""

import os
import subprocess
import sys
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parents[1] / "docs" / "plugin-template"


def test_template_installs_lists_and_trains(tmp_path, plugin_template):
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(plugin_template),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")]))

    def ganzoo(*args):
        return subprocess.run(
            [sys.executable, "-m", "ganzoo", *args], capture_output=True, text=True, env=env, timeout=300
        )

    listed = ganzoo("list")
    assert listed.returncode == 0, listed.stderr
    assert "toygan" in listed.stdout
    plugins = ganzoo("plugins")
    assert "toygan 0.1.0" in plugins.stdout
    trained = ganzoo(
        "train",
        "toygan",
        "--steps",
        "2",
        "--batch-size",
        "4",
        "--set",
        "width=8",
        "--device",
        "cpu",
        "--precision",
        "fp32",
        "--no-progress",
        "--out",
        str(tmp_path / "run"),
    )
    assert trained.returncode == 0, trained.stderr
    assert (tmp_path / "run" / "model.safetensors").is_file()
    # The template's own starter test passes against this ganzoo.
    starter = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(TEMPLATE / "tests")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=tmp_path,
    )
    assert starter.returncode == 0, starter.stdout + starter.stderr
