"""The run folder for an experiment that is not (yet) on the :class:`~prelu.lab.experiment.Experiment`
protocol: ``prelu gan``.

Owns nothing of its own: it applies the driver's folder rules (:mod:`prelu.lab.runs`) to a runner
that resolves its settings as a plain dict. Imports :mod:`prelu.lab.config`, :mod:`prelu.lab.runs`
and :mod:`prelu.lab.train`.

What such a runner gets, as the driver's experiments do: ``--name`` must be one folder name under
``--out``; a folder resumes only as the kind that made it; ``--force`` deletes only a folder the
lab made; everything is checked before anything is written; one writer at a time (the folder's
lock, held until the runner ends, ``--wait`` to wait for it); config.json carries the kind and the
format version; every file is written atomically (:mod:`prelu.lab.files`). What it does not get:
typed settings (its config is a dict checked by its own ``validate``), torchrun (it runs in one
process and says so), and the driver's results.json frame (the runner writes its own).

>>> import tempfile
>>> from prelu.lab.config import merge
>>> out = tempfile.mkdtemp()
>>> resolve = lambda options, stored=None: merge({"seeds": 2}, options, stored, ["seeds"])
>>> config, folder = prepare("demo", {"seeds": 3}, resolve=resolve, default_name=lambda c: "demo", out=out)
>>> config, folder.path.name
({'seeds': 3}, 'demo')
>>> with hold(folder, "demo", config):
...     sorted(entry.name for entry in folder.path.iterdir())
['.lock', 'config.json', 'curves', 'runs']
>>> prepare("other", {}, resolve=resolve, default_name=lambda c: "demo", out=out, resume=True)
Traceback (most recent call last):
...
prelu.lab.config.ConfigError: ... holds a 'prelu demo' experiment; resume it with prelu demo, or choose another \
--name for prelu other
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from prelu.lab.config import ConfigError
from prelu.lab.runs import RunFolder, folder_path
from prelu.lab.train import Distributed

__all__ = ["hold", "prepare", "single_process"]

Resolve = Callable[..., dict[str, Any]]


def single_process(kind: str, device: str = "cpu") -> Distributed:
    """This process as rank 0 of 1; a :class:`ConfigError` under torchrun (these runners do not shard)."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ConfigError(f"prelu {kind} runs in one process; start it without torchrun")
    return Distributed(0, 1, device)


def prepare(
    kind: str,
    options: Mapping[str, object],
    *,
    resolve: Resolve,
    default_name: Callable[[Mapping[str, Any]], str],
    out: str | Path = "runs",
    name: str | None = None,
    resume: bool = False,
    force: bool = False,
) -> tuple[dict[str, Any], RunFolder]:
    """Resolve the config (a resumed folder's stored settings included) and check what may happen to
    the folder, as :func:`prelu.lab.experiment.run` does; writes nothing."""
    config = resolve(options)
    folder = RunFolder(folder_path(out, default_name(config) if name is None else name))
    stored = folder.check(kind=kind, resume=resume, force=force)
    if stored is not None:
        config = resolve(options, stored)
    return config, folder


@contextmanager
def hold(
    folder: RunFolder,
    kind: str,
    config: Mapping[str, object],
    *,
    resume: bool = False,
    force: bool = False,
    wait: bool = False,
) -> Iterator[RunFolder]:
    """Lock the folder, check it again (no one else can write it now), fill it (``force``: empty it
    first) and hold the lock until the block ends, however it ends."""
    lock = folder.lock(wait=wait)
    try:
        folder.check(kind=kind, resume=resume, force=force)
        folder.create(kind, config, force=force)
        yield folder
    finally:
        lock.release()
