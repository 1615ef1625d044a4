"""One writer per run folder: an OS file lock held for the whole run.

Owns :class:`FolderLock`; imports :mod:`prelu.lab.config`.

The lock is ``fcntl.flock`` on ``<folder>/.lock``, a file that holds the pid of the process that
took it. The kernel releases a ``flock`` when its process ends, however it ends, so a lock left
by a dead process is no lock at all: the next writer takes it over without any stale-pid
guessing. A second writer is refused at once, with the holder's pid read from the file, unless
it asked to wait. The file itself stays (deleting it would let a third process lock a fresh
file while the second still holds the old one).

>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> with FolderLock(folder):
...     FolderLock(folder).acquire()
Traceback (most recent call last):
...
prelu.lab.config.ConfigError: ... is in use by process ...; wait for it to finish, or pass --wait
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType

from prelu.lab.config import ConfigError

LOCK_NAME = ".lock"

try:
    import fcntl
except ImportError:  # Windows: no flock; the folder is then not guarded against a second writer
    fcntl = None  # type: ignore[assignment]  # the module is optional here


class FolderLock:
    """An exclusive lock on ``folder`` (which must exist); a context manager."""

    def __init__(self, folder: str | Path, *, wait: bool = False) -> None:
        self.path = Path(folder) / LOCK_NAME
        self.wait = wait
        self._fd: int | None = None

    def holder(self) -> str:
        """The pid written in the lock file, or ``"unknown"``."""
        try:
            return self.path.read_text(encoding="ascii").strip() or "unknown"
        except (OSError, UnicodeDecodeError):
            return "unknown"

    def acquire(self) -> FolderLock:
        """Take the lock (waiting for it with ``wait``); a :class:`ConfigError` naming the holder's pid otherwise."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if self.wait else fcntl.LOCK_NB))
            except BlockingIOError:
                os.close(fd)
                raise ConfigError(
                    f"{self.path.parent} is in use by process {self.holder()}; wait for it to finish, or pass --wait"
                ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        """Give the lock back (closing the file releases the flock)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.release()
