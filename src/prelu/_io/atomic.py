"""Atomic writes: a reader sees the old file or the new one, never half of one.

Owns the one way :mod:`prelu` writes a file: a temporary file in the target's folder, flushed and
fsync'ed, then moved over the target with :func:`os.replace` (atomic on POSIX and Windows). A full
disk, an exception or a kill mid-write leaves the previous file as it was and no temporary behind
(except after a kill). The new file gets the mode an ordinary ``open(path, "w")`` would give,
``0o666`` less the umask (:func:`tempfile.mkstemp` alone makes it 0600). Imports nothing from
:mod:`prelu`.

>>> import pathlib, tempfile
>>> path = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
>>> write_text(path, "one\\n").read_text()
'one\\n'
>>> write_text(path, "two\\n").read_text()
'two\\n'
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def _umask() -> int:
    """The process's umask (reading it means setting it; it is set straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temp file in the same folder, fsync, ``os.replace``).

    The parent folder is created if missing. Returns the path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    return path


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; see :func:`write_bytes`."""
    return write_bytes(path, text.encode("utf-8"))
