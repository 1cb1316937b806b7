"""Crash-safe file writes shared by checkpoints, sample grids, pictures and score files."""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path

from ..errors import ConfigError


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()  # once, at import: setting and restoring it later could race with other threads


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never a partial one, even after a
    crash or a full disk: a temporary file in the same folder, fsync, then rename.

    Only a new path or an existing regular file is written (through a symbolic link to one, the file it names): a
    device node, FIFO, socket or folder at ``path`` is left untouched, as the rename would replace it.

    :param path: the file to write; its folder is created when missing.
    :param data: the complete contents.
    :raises ConfigError: when ``path`` is something other than a regular file or a new path.
    """
    path = writable_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".tmp-{path.name}-", dir=path.parent)
    try:
        # mkstemp creates the file private (0600); give it the permissions any other new file would get.
        os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:  # make the rename itself durable
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def writable_path(path: str | Path) -> Path:
    """The file an atomic write of ``path`` replaces: ``path`` itself when it is new or a regular file, the file it
    names when it is a symbolic link to a regular file.

    :param path: the destination asked for.
    :returns: the path to write.
    :raises ConfigError: when ``path`` is a device node, FIFO, socket, folder or a link to one, or a dangling link.
    """
    path = Path(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return path
    if stat.S_ISLNK(st.st_mode):
        try:
            st = os.stat(path)
        except OSError:
            raise ConfigError(f"{str(path)!r} is a symbolic link to nothing; give a file path to write") from None
        path = Path(os.path.realpath(path))
    if not stat.S_ISREG(st.st_mode):
        kind = "a folder" if stat.S_ISDIR(st.st_mode) else "a device, FIFO or socket"
        raise ConfigError(f"{str(path)!r} is {kind}, not a regular file; refusing to replace it, give a file path")
    return path


def refuse_overwriting_inputs(inputs: Iterable[str | Path], outputs: Iterable[str | Path], option: str = "-o") -> None:
    """Refuse a command whose outputs would replace one of its inputs: paths compared after resolving symbolic links,
    and existing files also by identity (a hard link is the same file under another name).

    :param inputs: the files the command reads.
    :param outputs: the files it would write.
    :param option: the option that chose the outputs, for the message.
    :raises ConfigError: naming the first output that is an input.
    """
    real: dict[str, Path] = {}
    ids: dict[tuple[int, int], Path] = {}
    for f in inputs:
        real[os.path.realpath(f)] = Path(f)
        try:
            st = os.stat(f)
            ids[(st.st_dev, st.st_ino)] = Path(f)
        except OSError:
            pass
    for out in outputs:
        hit = real.get(os.path.realpath(out))
        if hit is None:
            try:
                st = os.stat(out)
                hit = ids.get((st.st_dev, st.st_ino))
            except OSError:
                pass
        if hit is not None:
            raise ConfigError(f"writing {str(out)!r} would overwrite the input {str(hit)!r}; choose another {option}")
