"""The on-disk cache of real-data feature statistics, shared by ``ganzoo eval``, ``ganzoo metrics`` and
training-time evaluation.

Scoring a generator against real data needs the features of N real images (and of N more for the real-vs-real
floor); on a CPU the Inception forwards of those images cost far more than the generated ones. They depend only on
what is listed in the key below, so they are computed once and stored in ``$GANZOO_CACHE/features/`` (default
``~/.cache/ganzoo/features/``), one safetensors file per real set and extractor:

- ``data``: the data spec with its paths made absolute, and ``content``: a digest of the data it reads (names,
  sizes and modification times of the files under a path argument; the spec alone for procedural data, whose
  images follow from the spec and ``data_seed``);
- ``split``, ``dataset_len``, ``n``, ``subset_seed`` and a digest of the chosen ``indices``;
- ``pipeline``: image size, channels and the model's data options (what the dataset decodes and resizes to);
- ``extractor``: its name, weights sha256, resizer, 8-bit quantization and feature size;
- ``precision``: the autocast dtype of the extraction (``fp32`` or ``bf16``), and ``keep``: the raw rows kept.

The file name is ``DATASET-SPLIT-nN-EXTRACTOR-HASH.safetensors`` (HASH: the first 16 hex digits of the sha256 of the
key as sorted JSON); the full key is stored in its metadata and checked on every read, and the tensors carry the
project's integrity digest (:func:`ganzoo.train.checkpoint.save_tensors`). A damaged or mismatching entry is
reported in one line and recomputed. Writers hold a file lock, so concurrent evaluations compute an entry once.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch import Tensor

from ganzoo.errors import CheckpointError
from ganzoo.utils.download import cache_dir

__all__ = ["FORMAT_FEATURES", "FeatureCache", "data_content_digest", "feature_cache_dir", "indices_digest"]

FORMAT_FEATURES = "ganzoo.real-features/1"
# Bump when what an entry holds or how features are computed changes, so stale entries are never read.
KEY_VERSION = 1

_content_memo: dict[tuple[str, int], str] = {}


def feature_cache_dir() -> Path:
    """``$GANZOO_CACHE/features`` (default ``~/.cache/ganzoo/features``)."""
    return cache_dir() / "features"


def _spec_path(spec: str) -> Path | None:
    _, sep, arg = spec.strip().partition(":")
    if not sep or not arg:
        return None
    p = Path(arg).expanduser()
    return p.resolve() if p.exists() else None


def normalised_spec(spec: str) -> str:
    """The spec with a path argument made absolute, so ``mnist:data`` and ``mnist:/abs/data`` share entries.

    :param spec: a data spec ``NAME[:ARG]``.
    """
    name, sep, arg = spec.strip().partition(":")
    p = _spec_path(spec)
    return name.lower() + (f":{p}" if p is not None else (f":{arg}" if sep else ""))


def data_content_digest(spec: str) -> str:
    """A digest of the data ``spec`` reads: relative names, sizes and mtimes of every file under its path argument
    (``file:`` + hex), or ``procedural:SPEC`` when the spec names no existing path (generated data such as
    ``shapes`` or ``ring8``, fixed by the spec and the data seed).

    :param spec: a data spec.
    """
    p = _spec_path(spec)
    if p is None:
        return f"procedural:{spec.strip().lower()}"
    st = p.stat()
    memo_key = (str(p), st.st_mtime_ns)
    if p.is_dir() and memo_key in _content_memo:
        return _content_memo[memo_key]
    h = hashlib.sha256()
    files = [p] if p.is_file() else sorted(f for f in p.rglob("*") if f.is_file())
    for f in files:
        fs = f.stat()
        rel = f.name if f == p else f.relative_to(p).as_posix()
        h.update(f"{rel}\0{fs.st_size}\0{fs.st_mtime_ns}\n".encode())
    digest = "files:" + h.hexdigest()
    if p.is_dir():
        # A folder's mtime changes when a file is added or removed; edits in place change the files' own mtimes,
        # which the memo would miss, so it is only kept for this process's lifetime.
        _content_memo[memo_key] = digest
    return digest


def indices_digest(indices: list[int]) -> str:
    """The first 16 hex digits of the sha256 of an index list.

    :param indices: dataset indices, in order.
    """
    return hashlib.sha256(",".join(map(str, indices)).encode()).hexdigest()[:16]


def key_hash(key: dict[str, Any]) -> str:
    """The sha256 of a key as sorted JSON.

    :param key: the cache key.
    """
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()


class FeatureCache:
    """Real-set feature statistics on disk, keyed by everything that changes them (see the module docstring).

    :param enabled: ``False`` bypasses the cache entirely (``ganzoo eval --no-cache``): nothing read or written.
    :param root: the folder (default :func:`feature_cache_dir`).
    :param log: receives the one-line notes (damaged entries).
    """

    def __init__(
        self, enabled: bool = True, root: str | os.PathLike[str] | None = None, log: Callable[[str], None] | None = None
    ) -> None:
        self.enabled = enabled
        self.root = Path(root) if root is not None else feature_cache_dir()
        self.log = log

    def path_for(self, key: dict[str, Any]) -> Path:
        """The entry's file for ``key``.

        :param key: the cache key (with ``data``, ``split``, ``n`` and ``extractor.name``).
        """
        name = str(key.get("data", "data")).split(":")[0]
        ext = str(key.get("extractor", {}).get("name", "features"))
        return self.root / f"{name}-{key.get('split')}-n{key.get('n')}-{ext}-{key_hash(key)[:16]}.safetensors"

    def _note(self, msg: str) -> None:
        if self.log is not None:
            self.log(msg)

    def _read(self, path: Path, key: dict[str, Any]) -> dict[str, Tensor] | None:
        from ganzoo.train.checkpoint import load_tensors

        if not path.is_file():
            return None
        try:
            tensors, meta = load_tensors(path, FORMAT_FEATURES)
            stored = meta.get("ganzoo.features_key")
            if key_hash(stored if isinstance(stored, dict) else {}) != key_hash(key):
                raise CheckpointError(f"{str(path)!r} holds features of another key")
            return tensors
        except CheckpointError as e:
            self._note(f"feature cache: damaged entry {path.name} ({e}); recomputing")
            path.unlink(missing_ok=True)
            return None

    def get_or_compute(
        self, key: dict[str, Any], compute: Callable[[], dict[str, Tensor]]
    ) -> tuple[dict[str, Tensor], dict[str, Any]]:
        """The tensors stored under ``key``, or ``compute()``'s, then stored.

        :param key: the cache key, JSON-serialisable.
        :param compute: makes the tensors when the entry is absent or damaged.
        :returns: the tensors and ``{"hit", "key", "path"}`` for the provenance (``{"hit": False, "cache":
            "disabled"}`` when the cache is off).
        """
        if not self.enabled:
            return compute(), {"hit": False, "cache": "disabled"}
        from filelock import FileLock

        from ganzoo.train.checkpoint import save_tensors

        path = self.path_for(key)
        info = {"key": key_hash(key)[:16], "path": str(path)}
        hit = self._read(path, key)
        if hit is not None:
            return hit, {"hit": True, **info}
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            lock: Any = FileLock(str(path) + ".lock")
            lock.acquire()
        except OSError as e:  # a read-only or full cache folder costs speed, never the evaluation
            self._note(f"feature cache: cannot use {self.root} ({e}); computing without it")
            return compute(), {"hit": False, "cache": f"unusable: {e}"}
        # Another process may be computing the same entry: the lock makes this one wait and then read it.
        try:
            hit = self._read(path, key)
            if hit is not None:
                return hit, {"hit": True, **info}
            tensors = compute()
            try:
                save_tensors(path, tensors, {"ganzoo.features_key": key}, FORMAT_FEATURES)
            except OSError as e:
                self._note(f"feature cache: could not store {path.name} ({e}); the result is not cached")
                return tensors, {"hit": False, "cache": f"not stored: {e}"}
        finally:
            lock.release()
        return tensors, {"hit": False, **info}
