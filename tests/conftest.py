import json
import os
from pathlib import Path

import pytest
import torch

# Two cores: keep each test process on one thread so pytest-xdist workers do not fight.
torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]


def shared_data() -> Path | None:
    env = os.environ.get("GANZOO_SHARED_DATA")
    for p in ([Path(env)] if env else []) + [ROOT.parent / "shared" / "data"]:
        if p.is_dir():
            return p
    return None


@pytest.fixture
def shared_data_dir() -> Path:
    p = shared_data()
    if p is None:
        pytest.skip("../shared/data (or $GANZOO_SHARED_DATA) is absent on this machine")
    return p


@pytest.fixture
def plugin_template(tmp_path) -> Path:
    """A private copy of docs/plugin-template to pip-install: pip builds in the source tree (build/, *.egg-info), so
    two tests installing the same folder at once (pytest-xdist workers) would remove each other's build files."""
    import shutil

    ignore = shutil.ignore_patterns("build", "*.egg-info")
    return Path(shutil.copytree(ROOT / "docs" / "plugin-template", tmp_path / "plugin-template", ignore=ignore))


def edit_safetensors_header(path: Path, edit) -> None:
    """Rewrite a .safetensors file's JSON header in place through ``edit(header)``, leaving the tensor bytes as they
    are: how the tests forge tampered or older model files."""
    data = path.read_bytes()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + n])
    edit(header)
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.write_bytes(len(raw).to_bytes(8, "little") + raw + data[8 + n :])
