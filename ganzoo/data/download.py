"""Downloads of public dataset archives by name: cached, resumable, checksummed, safely extracted.

The catalogue comes from the plugins (the ``ganzoo_register_downloads`` hook): each entry names the archive's URL and
the registered dataset that reads the extracted folder. An entry may pin the archive's sha256; where it does not, the
first download records the digest in the cache (``<root>/SHA256SUMS``) and every later use verifies against it;
``--sha256`` pins a known digest.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import tarfile
import zipfile
from pathlib import Path
from typing import IO

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


# Members longer than this are refused: no dataset needs them, and over-long paths are how crafted archives have
# slipped past path checks that rely on the OS resolving names (realpath giving up at PATH_MAX).
_MAX_NAME = 1024
_MAX_PART = 255


def _member_path(archive: Path, base: Path, name: str) -> Path | None:
    """Where member ``name`` goes inside ``base``, or ``None`` for the archive's root entry; refuses anything that
    could land outside ``base`` whatever the OS does with the name."""
    bad = f"{archive.name} holds an entry outside its folder: {name!r}; refusing it"
    if not name or "\x00" in name or len(name) > _MAX_NAME:
        raise DataError(bad if name else f"{archive.name} holds an entry with an empty name; refusing it")
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        raise DataError(bad)
    parts = [q for q in name.replace("\\", "/").split("/") if q not in ("", ".")]
    if any(q == ".." for q in parts):
        raise DataError(bad)
    if any(len(q.encode()) > _MAX_PART for q in parts):
        raise DataError(f"{archive.name} holds an entry with an over-long name: {name[:80]!r}...; refusing it")
    if not parts:
        return None
    target = base.joinpath(*parts)
    # No links are ever written, so the lexical path is the real one; still compare, as a second line of defence.
    if not Path(os.path.normpath(target)).is_relative_to(base):
        raise DataError(bad)
    return target


def _mkdirs(base: Path, folder: Path) -> None:
    """Create ``folder`` (inside ``base``), refusing to pass through anything but a real directory."""
    cur = base
    for part in folder.relative_to(base).parts:
        cur = cur / part
        try:
            os.mkdir(cur, 0o755)
        except FileExistsError:
            if not stat.S_ISDIR(os.lstat(cur).st_mode):
                raise DataError(f"archive entry {str(cur.relative_to(base))!r} is both a file and a folder") from None


def _write_member(base: Path, target: Path, src: IO[bytes], archive: Path, name: str) -> None:
    _mkdirs(base, target.parent)
    try:
        # O_EXCL|O_NOFOLLOW: never write through an existing entry (a duplicate member, or anything link-like).
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    except FileExistsError:
        raise DataError(f"{archive.name} holds the entry {name!r} twice; refusing it") from None
    with os.fdopen(fd, "wb") as f:
        shutil.copyfileobj(src, f, 1 << 20)


def _extract_tar(archive: Path, base: Path) -> None:
    with tarfile.open(archive) as t:
        members = t.getmembers()
        plan = []
        for m in members:  # every member is checked before anything is written
            if m.issym() or m.islnk():
                raise DataError(
                    f"{archive.name} holds a link {m.name!r} -> {m.linkname!r}; dataset archives hold "
                    "only files and folders, refusing it"
                )
            if not (m.isreg() or m.isdir()):
                raise DataError(f"{archive.name} holds a special file (device, FIFO) {m.name!r}; refusing it")
            plan.append((m, _member_path(archive, base, m.name)))
        for m, target in plan:
            if target is None:
                continue
            if m.isdir():
                _mkdirs(base, target)
            else:
                src = t.extractfile(m)
                assert src is not None  # a regular member always has contents
                _write_member(base, target, src, archive, m.name)


def _extract_zip(archive: Path, base: Path) -> None:
    with zipfile.ZipFile(archive) as z:
        infos = z.infolist()
        plan = []
        for info in infos:
            mode = info.external_attr >> 16
            kind = stat.S_IFMT(mode)
            if stat.S_ISLNK(mode):
                raise DataError(
                    f"{archive.name} holds a link {info.filename!r}; dataset archives hold only files "
                    "and folders, refusing it"
                )
            if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
                raise DataError(f"{archive.name} holds a special file (device, FIFO) {info.filename!r}; refusing it")
            plan.append((info, _member_path(archive, base, info.filename)))
        for info, target in plan:
            if target is None:
                continue
            if info.is_dir():
                _mkdirs(base, target)
            else:
                with z.open(info) as src:
                    _write_member(base, target, src, archive, info.filename)


def _extract(archive: Path, dest: Path) -> None:
    """Extract ``archive`` into the new folder ``dest``, checking every member first: plain files and folders only
    (no links, devices or FIFOs), no absolute names, no ``..``, nothing that lands outside ``dest``. This does not
    rely on :mod:`tarfile`'s extraction filters, whose protection depends on the Python release. On any refusal
    ``dest`` is removed and nothing has been written outside it."""
    if dest.exists() or dest.is_symlink():
        _remove(dest)
    dest.mkdir(parents=True)
    base = dest.resolve()
    try:
        if archive.name.endswith(".zip"):
            _extract_zip(archive, base)
        else:
            _extract_tar(archive, base)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError) as e:
        _remove(dest)
        raise DataError(f"{archive.name} is not a readable archive: {e}") from None
    except BaseException:
        _remove(dest)
        raise


def _remove(path: Path) -> None:
    if path.is_symlink() or not path.is_dir():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path)


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
    folder = root / name
    if not folder.is_dir():
        tmp = root / f".extract-{name}"
        _extract(archive, tmp)
        entries = list(tmp.iterdir())
        # Archives hold one top-level folder named after the dataset; keep its contents under our name.
        (entries[0] if len(entries) == 1 and entries[0].is_dir() else tmp).rename(folder)
        if tmp.exists():
            _remove(tmp)
    if known is None:  # recorded only once the archive has extracted cleanly
        digest = sha256_file(archive)
        _record(root, archive.name, digest)
        print(f"recorded sha256 {digest} of {archive.name} in {root / 'SHA256SUMS'}")
    return folder


def spec_for(name: str, folder: Path) -> str:
    """The ``--data`` spec that reads a downloaded dataset.

    :param name: the registered download.
    :param folder: where it was extracted.
    :returns: ``reader:folder``.
    """
    from .. import registry

    return f"{registry.get('download', name).extra['reader']}:{folder}"
