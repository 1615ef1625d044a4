"""The ``--out`` folder of ``prelu bench``: refused when it holds anything else, written atomically,
and marked so that ``--force`` replaces only what the benchmark itself wrote.

Rules (the lab's, for run folders):

- a missing or empty ``--out`` is created and used;
- a non-empty one is refused (:class:`OutFolderError`, exit 2) unless ``--force`` is given;
- with ``--force`` it must be a benchmark folder: one with a manifest ``bench.json`` (kind
  ``prelu bench`` and a format version, listing every file the benchmark wrote and the mode that
  wrote it), or, from before the manifest, one holding nothing but the files the benchmark used to
  write. Anything else is refused and nothing is touched;
- a file the benchmark is about to write that exists and is not in the manifest is refused;
- at the end, a file that the same mode wrote last time and did not write again (a plot after
  ``--no-plot``) is deleted. Nothing not in the manifest is ever deleted or overwritten.

Every file goes through :func:`prelu._io.write_bytes` (temporary file, fsync, rename). The manifest
is updated before each file is written, so it always lists every file the benchmark may have
left. Imports :mod:`prelu._io`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from prelu._io import atomic, jsonio

MANIFEST = "bench.json"
KIND = "prelu bench"
FORMAT = 1
LEGACY_FILES: dict[str, str] = {"bench.csv": "run", "bench.png": "run", "results.md": "run", "memory.md": "memory"}
"""What ``prelu bench`` wrote before it kept a manifest, and which mode wrote it."""


class UsageError(Exception):
    """A ``prelu bench`` command was asked for something it cannot do; nothing was written (exit 2)."""


class OutFolderError(UsageError):
    """The ``--out`` folder may not be used as asked; nothing was written or deleted (exit 2)."""


def _plain_name(name: object) -> bool:
    return isinstance(name, str) and name not in ("", ".", "..", MANIFEST) and "/" not in name and "\\" not in name


def read_manifest(folder: Path) -> dict[str, str]:
    """The files (name -> mode) a benchmark wrote into ``folder``; OutFolderError when ``folder``
    is not a benchmark folder (see the module docstring)."""
    path = folder / MANIFEST
    if not path.exists():
        entries = list(folder.iterdir())
        if entries and all(entry.name in LEGACY_FILES and entry.is_file() for entry in entries):
            return {entry.name: LEGACY_FILES[entry.name] for entry in entries}
        raise OutFolderError(
            f"--out {folder} is not a prelu bench output folder (no {MANIFEST}); --force replaces only files "
            "prelu bench wrote, so nothing was touched. Choose an empty or new folder."
        )
    try:
        manifest = jsonio.read_json(path)
    except (OSError, ValueError) as error:
        raise OutFolderError(f"cannot read {path}: {error}") from None
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if (
        not isinstance(manifest, dict)
        or manifest.get("kind") != KIND
        or not isinstance(manifest.get("format"), int)
        or not isinstance(files, dict)
        or not all(_plain_name(name) and isinstance(mode, str) for name, mode in files.items())
    ):
        raise OutFolderError(f"{path} is not a prelu bench manifest (kind {KIND!r}, format, files); nothing touched")
    if manifest["format"] > FORMAT:
        raise OutFolderError(f"{path} has format {manifest['format']}, newer than this prelu's {FORMAT}")
    return dict(files)


class OutFolder:
    """The ``--out`` folder of one ``prelu bench`` mode; checks the rules on creation.

    Parameters:
        path: the folder (created when it does not exist).
        mode: the subcommand writing (``run``, ``memory``, ...): recorded per file.
        force: allow a non-empty benchmark folder.
        planned: file names this mode will write: checked now, before any work is done.

    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp()) / "out"
    >>> out = OutFolder(folder, mode="run", force=False, planned=["a.md"])
    >>> _ = out.write_text("a.md", "hello")
    >>> out.finish()
    >>> sorted(path.name for path in folder.iterdir())
    ['a.md', 'bench.json']
    >>> try:
    ...     OutFolder(folder, mode="run", force=False)
    ... except OutFolderError as error:
    ...     print("refused:", "is not empty" in str(error))
    refused: True
    """

    def __init__(self, path: str | os.PathLike[str], *, mode: str, force: bool, planned: Sequence[str] = ()) -> None:
        self.path = Path(path)
        self.mode = mode
        self._previous: dict[str, str] = {}
        self._written: dict[str, str] = {}
        if self.path.exists() and not self.path.is_dir():
            raise OutFolderError(f"--out {self.path} is a file, not a folder")
        if self.path.is_dir() and any(self.path.iterdir()):
            if not force:
                raise OutFolderError(
                    f"--out {self.path} is not empty; pass --force to replace what an earlier prelu bench wrote "
                    "there (nothing else is touched), or choose another folder"
                )
            self._previous = read_manifest(self.path)
        for name in planned:
            self._check(name)

    def _check(self, name: str) -> Path:
        if not _plain_name(name):
            raise ValueError(f"an output file name must be a plain file name, got {name!r}")
        target = self.path / name
        if (target.exists() or target.is_symlink()) and name not in self._previous and name not in self._written:
            raise OutFolderError(f"{target} exists and was not written by prelu bench; not overwriting it")
        if target.is_dir():
            raise OutFolderError(f"{target} is a folder; not replacing it")
        return target

    def _save_manifest(self) -> None:
        files = {**self._previous, **self._written}
        atomic.write_text(self.path / MANIFEST, jsonio.dumps({"kind": KIND, "format": FORMAT, "files": files}))

    def write_bytes(self, name: str, data: bytes) -> Path:
        """Write ``data`` to ``name`` in the folder, atomically, recording it in the manifest first."""
        target = self._check(name)
        self._written[name] = self.mode
        self._save_manifest()
        return atomic.write_bytes(target, data)

    def write_text(self, name: str, text: str) -> Path:
        """Write ``text`` (UTF-8) like :meth:`write_bytes`."""
        return self.write_bytes(name, text.encode("utf-8"))

    def finish(self) -> None:
        """Delete what this mode wrote last time and not this time; leave a complete manifest."""
        for name, mode in list(self._previous.items()):
            if mode == self.mode and name not in self._written:
                (self.path / name).unlink(missing_ok=True)
                del self._previous[name]
        self._save_manifest()
