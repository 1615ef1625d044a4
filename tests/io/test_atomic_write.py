"""prelu._io.atomic: a failed write leaves the previous file whole; new files respect the umask."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from prelu._io import atomic, write_bytes, write_text


def _leftovers(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir() if path.name.endswith(".tmp"))


def test_write_replaces_the_file_and_creates_the_folder(tmp_path: Path) -> None:
    path = tmp_path / "new" / "a.txt"
    assert write_text(path, "one") == path
    write_text(path, "two")
    assert path.read_text() == "two"
    assert _leftovers(path.parent) == []


class _HalfWriter:
    """Writes half of what it is given, then fails like a full disk."""

    def __init__(self, file: Any) -> None:
        self._file = file

    def __enter__(self) -> _HalfWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()

    def write(self, data: bytes) -> int:
        self._file.write(data[: len(data) // 2])
        self._file.flush()
        raise OSError(errno.ENOSPC, "No space left on device")


def test_a_write_failing_midway_leaves_the_previous_file_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "bench.csv"
    previous = b"op,value\n" + b"prelu,1.0\n" * 1000
    write_bytes(path, previous)
    real_fdopen = os.fdopen
    monkeypatch.setattr(atomic.os, "fdopen", lambda fd, mode: _HalfWriter(real_fdopen(fd, mode)))
    with pytest.raises(OSError, match="No space left"):
        write_bytes(path, b"op,value\n" + b"prelu,2.0\n" * 1000)
    assert path.read_bytes() == previous
    assert _leftovers(tmp_path) == []


def test_a_failing_fsync_or_rename_leaves_the_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "a.json"
    write_text(path, "old")
    for name in ("fsync", "replace"):
        with monkeypatch.context() as patch:

            def fail(*args: object, name: str = name) -> None:
                raise OSError(f"{name} failed")

            patch.setattr(atomic.os, name, fail)
            with pytest.raises(OSError, match=f"{name} failed"):
                write_text(path, "new")
        assert path.read_text() == "old"
        assert _leftovers(tmp_path) == []


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_new_files_get_the_mode_open_would_give(tmp_path: Path, umask: int, mode: int) -> None:
    old = os.umask(umask)
    try:
        path = write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == mode
