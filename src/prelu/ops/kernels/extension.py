"""Build and load the C++ CPU kernels and autograd ops (``csrc/``) on first use, cached per user.

Owns the build: the cache folder, the compiler flags and the one warning when no build is
possible; imports only torch (``torch.utils.cpp_extension``, which runs ninja and the C++ compiler).

- **Where**: ``$PRELU_EXTENSION_DIR`` if set, else ``$XDG_CACHE_HOME/prelu`` (``~/.cache/prelu``),
  in a folder named after the torch version and a hash of the sources, the header, the flags
  and the Python version, so a new torch or an edited source builds afresh and never loads a
  stale library.
- **Cold**: ``torch.utils.cpp_extension.load`` compiles three translation units, two at a time
  (20-40 s on 2 cores; a message on stderr says so), holding its file lock, so parallel test
  workers build once.
- **Warm**: the library is imported directly from the cache folder (no ninja run).
- **What loads**: one library that is both the Python module ``prelu_cpu`` (its ``try_prelu``,
  :func:`entry`, is prelu.prelu's fast path) and, through its static initialisers, the
  ``torch.ops.prelu_cpu`` ops (:func:`load`).
- **Flags**: ``-O3``, and ``-mavx2 -mfma`` with ``CPU_CAPABILITY_AVX2`` (the flags of torch's own
  AVX2 kernels, so ``at::vec::Vectorized`` is 256 bits wide) only where torch reports an AVX2 or
  AVX512 CPU; elsewhere the portable ``DEFAULT`` capability. ``-fopenmp`` makes ``at::parallel_for``
  run in parallel; the library then needs ``libgomp.so.1``, which resolves to the copy torch has
  already loaded (same soname), so the process keeps one OpenMP pool: torch's.
- **No compiler** (or a failed build): :func:`load` returns None after ONE ``RuntimeWarning`` that
  says why and what runs instead (torch's own aten kernels, on the same pool).
  ``PRELU_NO_EXTENSION=1`` skips the build on purpose, silently.
"""

from __future__ import annotations

import contextvars
import hashlib
import importlib.util
import os
import shutil
import sys
import threading
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

NAME = "prelu_cpu"
SOURCE_DIR = Path(__file__).with_name("csrc")
# prelu_cpu.cpp: the kernels; prelu_autograd.cpp: the autograd ops around them; prelu_python.cpp:
# the Python entry that calls those ops (three units, so ninja compiles them in parallel);
# kernels.h: what the second calls in the first.
SOURCES = (SOURCE_DIR / "prelu_cpu.cpp", SOURCE_DIR / "prelu_autograd.cpp", SOURCE_DIR / "prelu_python.cpp")
HEADERS = (SOURCE_DIR / "kernels.h",)
DISABLE_VARIABLE = "PRELU_NO_EXTENSION"
DIR_VARIABLE = "PRELU_EXTENSION_DIR"
FALLBACK = "torch's aten kernels (_prelu_kernel, leaky_relu) run instead, on torch's own thread pool"

_lock = threading.Lock()
_state: dict[str, Any] = {}  # "ops": the loaded namespace or None; "module": the Python module; "why": why not


def compile_flags() -> list[str]:
    """``-O3 -fopenmp`` plus the vector flags this CPU takes (see the module docstring)."""
    flags = ["-O3", "-fopenmp", "-DNDEBUG"]
    if torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512"):
        return [*flags, "-mavx2", "-mfma", "-mf16c", "-DCPU_CAPABILITY=AVX2", "-DCPU_CAPABILITY_AVX2"]
    return [*flags, "-DCPU_CAPABILITY=DEFAULT"]


def build_dir() -> Path:
    """The cache folder for this torch, CPU capability, source and flags (not created here)."""
    root = os.environ.get(DIR_VARIABLE)
    base = Path(root) if root else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "prelu"
    digest = hashlib.sha256()
    for path in (*SOURCES, *HEADERS):
        digest.update(path.read_bytes())
    digest.update(" ".join(compile_flags()).encode())
    digest.update(sys.version.encode())
    version = torch.__version__.replace("+", "_")
    return base / f"{NAME}-torch{version}-{digest.hexdigest()[:16]}"


def _compiler_problem() -> str:
    compiler = os.environ.get("CXX", "c++")
    if shutil.which(compiler) is None:
        return f"no C++ compiler: {compiler!r} (from $CXX, default c++) is not on PATH"
    return ""


def _ninja_on_path() -> str | None:
    """The folder of a ninja from the ``ninja`` package, when PATH has none (a venv not activated)."""
    if shutil.which("ninja"):
        return None
    try:
        import ninja  # type: ignore[import-untyped,unused-ignore]  # the PyPI ninja package ships no stubs
    except ImportError:
        return None
    return str(ninja.BIN_DIR)


def _build(directory: Path) -> ModuleType:
    from torch.utils import cpp_extension

    problem = _compiler_problem()
    if problem:
        raise RuntimeError(problem)
    directory.mkdir(parents=True, exist_ok=True)
    print(
        f"prelu: building the C++ CPU kernels once for this torch (20-40 s on 2 cores) in {directory} ...",
        file=sys.stderr,
        flush=True,
    )
    extra_path = _ninja_on_path()
    old_path = os.environ.get("PATH", "")
    if extra_path:
        os.environ["PATH"] = extra_path + os.pathsep + old_path
    try:
        module: ModuleType = cpp_extension.load(
            name=NAME,
            sources=[str(path) for path in SOURCES],
            extra_cflags=compile_flags(),
            extra_ldflags=["-fopenmp"],
            build_directory=str(directory),
            is_python_module=True,
            verbose=False,
        )
    finally:
        if extra_path:
            os.environ["PATH"] = old_path
    print("prelu: C++ CPU kernels built.", file=sys.stderr, flush=True)
    return module


def _import(library: Path) -> ModuleType:
    """The built library as the Python module ``prelu_cpu``; importing it registers the ops."""
    spec = importlib.util.spec_from_file_location(NAME, library)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {library}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _load() -> Any:
    if os.environ.get(DISABLE_VARIABLE, "").strip() not in ("", "0"):
        _state["why"] = f"${DISABLE_VARIABLE} is set"
        return None
    module = sys.modules.get(NAME)
    if module is not None and hasattr(module, "try_prelu") and hasattr(getattr(torch.ops, NAME), "prelu_"):
        _state["module"] = module  # loaded already (by another copy of this module)
        return getattr(torch.ops, NAME)
    directory = build_dir()
    library = directory / f"{NAME}.so"
    try:
        building = not library.exists() or (directory / "lock").exists()  # not built, or another process building
        module = _build(directory) if building else _import(library)
    except Exception as error:  # any build or load failure: fall back, say why once
        reason = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
        _state["why"] = reason
        warnings.warn(
            f"prelu: the C++ CPU kernels are not available ({reason}); {FALLBACK}. "
            f"Install a C++ compiler (g++ or clang++) to build them, or set {DISABLE_VARIABLE}=1 to silence this.",
            RuntimeWarning,
            stacklevel=4,
        )
        return None
    sys.modules[NAME] = module
    _state["module"] = module
    return getattr(torch.ops, NAME)


def load() -> Any:
    """``torch.ops.prelu_cpu`` (building it first if needed), or None when it cannot be built."""
    loaded = _state.get("ops")
    if loaded is not None:  # every call after the first (this runs once per prelu call)
        return loaded
    if "ops" not in _state:
        with _lock:
            if "ops" not in _state:
                _state["ops"] = _load()
    return _state["ops"]


def entry(forced_backend: contextvars.ContextVar[str | None]) -> Any:
    """``prelu_cpu.try_prelu`` (see ``csrc/prelu_python.cpp``), told which ContextVar holds the
    backend ``prelu.use_backend`` forces (it declines while that is not None); None when
    :func:`load` gave None."""
    if load() is None:
        return None
    module = _state["module"]
    module.bind_backend_variable(forced_backend)
    return module.try_prelu


def unavailable_reason() -> str:
    """Why :func:`load` returned None ('' when it has not or it loaded)."""
    return str(_state.get("why", ""))
