"""Downloads of public dataset archives by name: cached, resumable, checksummed, safely extracted.

The catalogue comes from the plugins (the ``ganzoo_register_downloads`` hook): each entry names the archive's URL and
the registered dataset that reads the extracted folder. An entry may pin the archive's sha256; where it does not, the
first download records the digest in the cache (``<root>/SHA256SUMS``) and every later use verifies against it;
``--sha256`` pins a known digest.
"""

from __future__ import annotations

import os
import tarfile
import zipfile
from pathlib import Path

from .base import DataError


def default_root() -> Path:
    from ..utils.download import cache_dir

    return Path(os.environ.get("GANZOO_DATA", cache_dir() / "data"))


def _sums(root: Path) -> dict[str, str]:
    f = root / "SHA256SUMS"
    if not f.is_file():
        return {}
    return {line.split()[1]: line.split()[0] for line in f.read_text().splitlines() if len(line.split()) == 2}


def _record(root: Path, archive: str, digest: str) -> None:
    sums = _sums(root)
    sums[archive] = digest
    (root / "SHA256SUMS").write_text("".join(f"{d}  {a}\n" for a, d in sorted(sums.items())))


def _extract(archive: Path, dest: Path) -> None:
    """Extract without letting an entry escape ``dest`` (absolute paths, ``..``, links)."""
    dest.mkdir(parents=True, exist_ok=True)
    base = dest.resolve()
    if archive.name.endswith(".zip"):
        with zipfile.ZipFile(archive) as z:
            for member in z.namelist():
                if not (base / member).resolve().is_relative_to(base):
                    raise DataError(f"{archive.name} holds an entry outside its folder: {member!r}; refusing it")
            z.extractall(dest)
    else:
        with tarfile.open(archive) as t:
            t.extractall(dest, filter="data")


def download(name: str, root: str | Path | None = None, base_url: str | None = None, sha256: str | None = None) -> Path:
    """Download and extract the registered archive ``name``.

    :param name: a name registered through ``ganzoo_register_downloads`` (``ganzoo data list``).
    :param root: where archives (``root/archives``) and extracted folders go (default :func:`default_root`).
    :param base_url: a mirror (or test server) replacing everything before the archive's file name in its URL.
    :param sha256: the archive's expected digest, overriding the registered and the recorded one.
    :returns: the extracted folder, ``root/name``.
    """
    from .. import registry
    from ..utils.download import download_file, sha256_file

    entry = registry.get("download", name)
    root = Path(root) if root is not None else default_root()
    url = entry.obj
    if base_url:
        url = base_url.rstrip("/") + "/" + url.rsplit("/", 1)[1]
    archive = root / "archives" / url.rsplit("/", 1)[1]
    known = sha256 or entry.extra.get("sha256") or _sums(root).get(archive.name)
    try:
        download_file(url, archive, known)
    except ValueError as e:
        raise DataError(f"{archive.name}: {e}") from None
    except OSError as e:
        raise DataError(f"could not download {url}: {e}") from None
    if known is None:
        digest = sha256_file(archive)
        _record(root, archive.name, digest)
        print(f"recorded sha256 {digest} of {archive.name} in {root / 'SHA256SUMS'}")
    folder = root / name
    if not folder.is_dir():
        tmp = root / f".extract-{name}"
        _extract(archive, tmp)
        entries = [p for p in tmp.iterdir()]
        # Archives hold one top-level folder named after the dataset; keep its contents under our name.
        (entries[0] if len(entries) == 1 and entries[0].is_dir() else tmp).rename(folder)
        if tmp.exists() and not any(tmp.iterdir()):
            tmp.rmdir()
    return folder


def spec_for(name: str, folder: Path) -> str:
    """The ``--data`` spec that reads a downloaded dataset.

    :param name: the registered download.
    :param folder: where it was extracted.
    :returns: ``reader:folder``.
    """
    from .. import registry

    return f"{registry.get('download', name).extra['reader']}:{folder}"
