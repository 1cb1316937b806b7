"""`ganzoo data download` against a local HTTP server serving small fixture archives (never the internet)."""

import functools
import http.server
import io
import tarfile
import threading
import zipfile

import pytest
from PIL import Image

from ganzoo.cli import main


def png_bytes(w, h, colour):
    buf = io.BytesIO()
    Image.new("RGB", (w, h), colour).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def server(tmp_path):
    files = tmp_path / "srv"
    files.mkdir()
    with tarfile.open(files / "facades.tar.gz", "w:gz") as t:  # pix2pix layout: facades/train/*.png (A|B)
        for i in range(2):
            data = png_bytes(64, 32, (i * 100, 0, 0))
            info = tarfile.TarInfo(f"facades/train/{i}.png")
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    with zipfile.ZipFile(files / "horse2zebra.zip", "w") as z:  # CycleGAN layout: horse2zebra/trainA, trainB
        for d in ("trainA", "trainB", "testA", "testB"):
            z.writestr(f"horse2zebra/{d}/0.png", png_bytes(32, 32, (0, 200, 0)))
    with zipfile.ZipFile(files / "apple2orange.zip", "w") as z:
        z.writestr("../evil.png", b"x")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(files))
    handler.log_message = lambda *a: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_download_extract_and_train_spec(server, tmp_path, capsys):
    root = tmp_path / "data"
    assert main(["data", "download", "facades", "--root", str(root), "--base-url", server]) == 0
    out = capsys.readouterr().out
    assert "recorded sha256" in out and f"aligned:{root / 'facades'}" in out
    assert sorted(p.name for p in (root / "facades" / "train").iterdir()) == ["0.png", "1.png"]
    assert "facades.tar.gz" in (root / "SHA256SUMS").read_text()
    # A second call uses the cache and verifies the recorded digest.
    assert main(["data", "download", "facades", "--root", str(root), "--base-url", server]) == 0
    assert "recorded" not in capsys.readouterr().out
    assert main(["data", "download", "horse2zebra", "--root", str(root), "--base-url", server]) == 0
    assert (root / "horse2zebra" / "trainB" / "0.png").is_file()

    from ganzoo.data.translation import register_datasets  # the downloaded layout is readable by the readers

    found = {}
    register_datasets(lambda name, factory, **kw: found.setdefault(name, factory))
    from ganzoo.data import DataRequest

    ds = found["aligned"](str(root / "facades"), DataRequest(task="paired", image_size=32))
    assert len(ds) == 2


def test_bad_names_digests_and_archives(server, tmp_path, capsys):
    root = tmp_path / "data"
    assert main(["data", "download", "horse2zebrra", "--root", str(root)]) == 2
    assert "Did you mean 'horse2zebra'" in capsys.readouterr().err
    assert main(["data", "download", "facades", "--root", str(root), "--base-url", server, "--sha256", "0" * 64]) == 2
    assert "sha256" in capsys.readouterr().err
    assert main(["data", "download", "apple2orange", "--root", str(root), "--base-url", server]) == 2
    assert "outside its folder" in capsys.readouterr().err
    assert main(["data", "list"]) == 0 and "horse2zebra" in capsys.readouterr().out
