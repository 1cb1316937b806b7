"""Downloads of the public pix2pix and CycleGAN datasets by name: cached, resumable, checksummed, safely extracted.

The archives live where the authors of pix2pix and CycleGAN published them. Their sha256 digests are not recorded
in this project (it was built without network access), so the first download of an archive records its digest in
the cache (``<root>/SHA256SUMS``) and every later use verifies against it; ``--sha256`` pins a known digest.
"""

from __future__ import annotations

import os
import tarfile
import zipfile
from pathlib import Path

from .base import DataError

PIX2PIX_URL = "http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/{name}.tar.gz"
CYCLEGAN_URL = "http://efrosgans.eecs.berkeley.edu/cyclegan/datasets/{name}.zip"

# name -> (url template, archive name, layout, data spec prefix)
DATASETS: dict[str, tuple[str, str, str]] = {
    **{
        n: (PIX2PIX_URL, n, "aligned")
        for n in ("facades", "cityscapes", "maps", "edges2shoes", "edges2handbags", "night2day")
    },
    **{
        n: (CYCLEGAN_URL, n, "unaligned")
        for n in (
            "horse2zebra",
            "apple2orange",
            "summer2winter_yosemite",
            "monet2photo",
            "cezanne2photo",
            "ukiyoe2photo",
            "vangogh2photo",
            "iphone2dslr_flower",
        )
    },
    "cyclegan-maps": (CYCLEGAN_URL, "maps", "unaligned"),
    "cyclegan-facades": (CYCLEGAN_URL, "facades", "unaligned"),
}


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
    """Download and extract dataset ``name``; returns its folder. ``base_url`` replaces the authors' host (mirrors,
    tests)."""
    from ..errors import UnknownNameError
    from ..utils.download import download_file, sha256_file

    if name not in DATASETS:
        raise UnknownNameError("downloadable dataset", name, DATASETS)
    template, remote, _layout = DATASETS[name]
    root = Path(root) if root is not None else default_root()
    url = template.format(name=remote)
    if base_url:
        url = base_url.rstrip("/") + "/" + url.rsplit("/", 1)[1]
    archive = root / "archives" / url.rsplit("/", 1)[1]
    known = sha256 or _sums(root).get(archive.name)
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
    return f"{DATASETS[name][2]}:{folder}"
