"""One run per folder: an OS lock on ``OUT/.ganzoo.lock`` held for the life of :meth:`Trainer.fit`.

The lock is ``flock`` on an open file, so the kernel drops it when the process ends however it ends (SIGKILL, a
crash, power loss on a local disk): a stale lock file is harmless, and the next run takes it. The file also says who
holds it (pid, host, start time), so a second run into the same folder fails at once naming the first.
"""

from __future__ import annotations

import datetime
import json
import os
import socket
from pathlib import Path
from types import TracebackType

from ..errors import GanzooError

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: runs are not locked there
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".ganzoo.lock"


class RunFolderBusy(GanzooError):
    """Another process is training into the same run folder."""


class RunLock:
    """Hold the run folder ``folder`` for one process; a context manager.

    :param folder: the run folder (created when missing; removed again on release when the lock file is all that
        is in it, so a run that fails before writing anything leaves no folder behind).
    """

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self._fd: int | None = None
        self._created = False

    def acquire(self) -> None:
        """Take the lock, or raise :class:`RunFolderBusy` naming the holder; never waits."""
        if fcntl is None:
            return
        self._created = not self.folder.exists()
        self.folder.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = _describe(self.path)
                os.close(fd)
                raise RunFolderBusy(
                    f"{str(self.folder)!r} is in use by another run ({holder}); wait for it, stop it, or choose "
                    "another --out"
                ) from None
            # A releasing run may have unlinked the file between our open and our flock: then we hold a lock on
            # a file nobody else can see, so start again with the one now at the path.
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        info = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": started}) + "\n"
        os.ftruncate(fd, 0)
        os.pwrite(fd, info.encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Give the lock up (and remove a folder this lock created that holds nothing else)."""
        if self._fd is None:
            return
        try:
            if self._created and [p.name for p in self.folder.iterdir()] == [LOCK_NAME]:
                self.path.unlink()
                self.folder.rmdir()
            else:
                os.ftruncate(self._fd, 0)
        except OSError:
            pass
        finally:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def _describe(path: Path) -> str:
    """``pid 123 on host, started 2026-...`` from the holder's lock file (best effort: it may be mid-write)."""
    try:
        info = json.loads(path.read_text())
        return f"pid {info['pid']} on {info['host']}, started {info['started']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "a process that has not yet said who it is"
