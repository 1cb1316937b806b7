"""Cached, resumable, checksummed downloads and the cache folder, shared by the Inception weights and the datasets.

Tested against a local HTTP server on 127.0.0.1 (tests/test_metrics_inception.py, tests/test_download.py).
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

ENV_CACHE = "GANZOO_CACHE"

_hash_memo: dict[tuple[str, int, int], str] = {}


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, remembered per (path, size, mtime) so repeated loads do not re-read 87 MB."""
    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _hash_memo:
        h = hashlib.sha256()
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _hash_memo[key] = h.hexdigest()
    return _hash_memo[key]


def cache_dir() -> Path:
    """``$GANZOO_CACHE`` if set, else ``~/.cache/ganzoo``."""
    env = os.environ.get(ENV_CACHE)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "ganzoo"


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    # Several ranks of one torchrun job may ask for the weights at once; without a lock they would append to the
    # same .part file. Advisory flock where the platform has it, nothing elsewhere.
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


class _Interrupted(Exception):
    """The transfer ended before the announced number of bytes arrived."""


def _fetch_once(
    url: str, part: Path, timeout: float, chunk_size: int, progress: Callable[[int, int], None] | None
) -> None:
    have = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(url, headers={"User-Agent": "ganzoo"})
    if have:
        req.add_header("Range", f"bytes={have}-")
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:
            # Nothing left past our offset: the .part is already whole (or longer than the file); the hash decides.
            return
        raise
    with resp:
        if resp.status == 206:
            start = int(resp.headers.get("Content-Range", "bytes 0-").split()[1].split("-")[0])
            if start != have:
                raise _Interrupted(f"server resumed at byte {start}, expected {have}")
            mode = "ab"
        else:
            # 200 means the server ignored the Range header and sends the whole file: start over.
            have, mode = 0, "wb"
        length = resp.headers.get("Content-Length")
        expected_end = have + int(length) if length is not None else None
        done = have
        with open(part, mode) as f:
            try:
                while True:
                    # Only network errors count as an interruption worth resuming; a failing disk write must not.
                    try:
                        block = resp.read(chunk_size)
                    except (http.client.IncompleteRead, ConnectionError, TimeoutError) as e:
                        raise _Interrupted(str(e)) from e
                    if not block:
                        break
                    f.write(block)
                    done += len(block)
                    if progress is not None:
                        progress(done, expected_end or 0)
            finally:
                f.flush()
                os.fsync(f.fileno())
        if expected_end is not None and done < expected_end:
            raise _Interrupted(f"got {done} of {expected_end} bytes")


def download_file(
    url: str,
    dest: str | os.PathLike[str],
    sha256: str | None,
    *,
    retries: int = 3,
    timeout: float = 60.0,
    chunk_size: int = 1 << 20,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Download ``url`` to ``dest`` atomically and resumably, checking its sha256.

    Bytes go to ``dest + ".part"``; an interrupted transfer leaves that file behind and the next attempt (in this
    call, up to ``retries`` more times, or in a later call) asks only for the rest with an HTTP Range request.
    Only a complete file whose hash matches is fsynced and renamed to ``dest``, so ``dest`` is either absent or
    right. A resumed file that fails the hash is discarded and fetched once more from byte 0; a fresh one that
    fails raises ``ValueError``.

    Args:
        sha256: expected hex digest; ``None`` skips the check (only for files without a published hash).
        progress: called as ``progress(bytes_so_far, total_or_0)``.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    with _file_lock(dest.with_name(dest.name + ".lock")):
        if dest.exists() and (sha256 is None or sha256_file(dest) == sha256):
            return dest
        fresh_retry_left = True
        attempts_left = retries
        while True:
            resumed = part.exists() and part.stat().st_size > 0
            try:
                _fetch_once(url, part, timeout, chunk_size, progress)
            except (_Interrupted, urllib.error.URLError, ConnectionError, TimeoutError) as e:
                if isinstance(e, urllib.error.HTTPError) and e.code not in (408, 429, 500, 502, 503, 504):
                    raise
                if attempts_left <= 0:
                    raise ConnectionError(f"download of {url} interrupted ({e}); {part} kept for resuming") from e
                attempts_left -= 1
                continue
            digest = sha256_file(part) if sha256 is not None else None
            if digest == sha256:
                break
            part.unlink()
            if resumed and fresh_retry_left:
                fresh_retry_left = False
                continue
            raise ValueError(f"sha256 mismatch for {url}: got {digest}, expected {sha256}")
        os.replace(part, dest)
        if digest is not None:
            # A rename keeps size and mtime, so the digest just computed still describes the file: skip re-reading it.
            st = dest.stat()
            _hash_memo[(str(dest.resolve()), st.st_size, st.st_mtime_ns)] = digest
        # The rename is durable only once the directory entry is on disk too.
        with contextlib.suppress(OSError):
            fd = os.open(dest.parent, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    return dest
