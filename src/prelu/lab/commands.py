"""The lab's commands, ``prelu compare``, ``prelu depth``, ``prelu dying`` and ``prelu gan``: their
flags and their runners.

Owns the lab's argument parsing, its exit codes and its signal handling; :func:`add_parsers` is
the one call :mod:`prelu.cli` makes. Imports :mod:`prelu.lab.compare`, :mod:`prelu.lab.depth`,
:mod:`prelu.lab.dying`, :mod:`prelu.lab.gan`, :mod:`prelu.lab.datasets`,
:mod:`prelu.lab.experiment` and :mod:`prelu.lab.config` (lazily, so ``prelu --help`` stays fast).
``compare``, ``depth`` and ``dying`` run through the Experiment driver (:func:`run_experiment`);
``gan`` is a self-contained runner (:func:`run_standalone`) with the same folder rules, exit codes
and signal handling.

Exit codes: 0 done (diverged runs included: they are results), 2 bad flags or a run folder that
may not be used (nothing written), 1 a failure while running, 130 Ctrl-C, 143 SIGTERM. SIGTERM is
handled as Ctrl-C is: the finished runs are kept, the report is written and marked incomplete,
and ``--resume`` continues.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import FrameType
from typing import Any

from prelu._io.arguments import one_line_errors

SIGTERM_EXIT = 128 + signal.SIGTERM


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, so it unwinds as Ctrl-C does (runs kept, report written)."""


def _fraction(text: str) -> float:
    try:
        value = float(text.rstrip("%")) / (100.0 if text.endswith("%") else 1.0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number like 0.95 or 95%") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be an accuracy in (0, 1], like 0.95 or 95%")
    return value


def _names(values: Sequence[str] | None) -> list[str] | None:
    """``--activations relu prelu`` or ``--activations relu,prelu``."""
    if values is None:
        return None
    return [name for value in values for name in value.split(",") if name.strip()]


def _add_training_flags(
    parser: argparse.ArgumentParser, defaults: Mapping[str, object], datasets: Sequence[str]
) -> None:
    """Flags shared by ``compare`` and ``depth``; every default is None so --resume can tell given flags apart."""
    parser.add_argument("--dataset", choices=datasets, default=None, help=f"default {defaults['dataset']}")
    parser.add_argument(
        "--seeds", type=int, default=None, metavar="N", help=f"seeds 0..N-1 (default {defaults['seeds']})"
    )
    parser.add_argument(
        "--epochs", type=int, default=None, metavar="N", help=f"default {defaults['epochs'] or 'per dataset'}"
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=None,
        metavar="N",
        help=f"global batch (default {defaults['batch_size']})",
    )
    parser.add_argument(
        "--optimizer", choices=["sgd", "adam", "adamw"], default=None, help=f"default {defaults['optimizer']}"
    )
    parser.add_argument("--lr", type=float, default=None, help=f"learning rate (default {defaults['lr']})")
    parser.add_argument("--momentum", type=float, default=None, help=f"SGD momentum (default {defaults['momentum']})")
    parser.add_argument(
        "--weight-decay", type=float, default=None, help=f"for weights (default {defaults['weight_decay']})"
    )
    parser.add_argument(
        "--slope-weight-decay", type=float, default=None, help="for PReLU slopes (default 0: none, as He et al.)"
    )
    parser.add_argument("--width", type=int, default=None, metavar="N", help="units or channels per layer")
    parser.add_argument("--limit", type=int, default=None, metavar="N", help="use the first N train and test samples")
    parser.add_argument("--device", choices=["cpu", "cuda"], default=None, help="default cpu")
    parser.add_argument(
        "--name", default=None, help="run folder name under --out, one folder name (default: from the settings)"
    )
    parser.add_argument("--out", default="runs", metavar="DIR", help="parent of run folders (default runs/)")
    parser.add_argument(
        "--resume", action="store_true", help="continue an interrupted run folder, keeping finished runs"
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="delete an existing run folder (only one made by prelu's lab) and start over",
    )
    parser.add_argument(
        "--wait",
        action="store_true",
        help="if another process is writing the run folder, wait for it instead of failing",
    )
    parser.add_argument("--threads", type=int, default=None, metavar="N", help="torch.set_num_threads(N)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (one line per finished run stays)")


COMPARE_TEXTS = {
    "help": "train ReLU, Leaky ReLU and PReLU alike over several seeds; tables, report.html and claims",
    "description": (
        "Trains one model per activation and seed with the same initial weights and data order per seed, then "
        "prints mean ± std of test accuracy and loss, epochs to a target accuracy, dead units, learned slopes "
        "and seconds per epoch, checks the PReLU paper's claims against them, and writes results.json, per-run "
        "curves and a self-contained report.html to runs/<name>/. Under torchrun it trains with "
        "DistributedDataParallel (gloo on CPU, nccl on CUDA)."
    ),
    "epilog": (
        "Folder datasets (mnist, fashion-mnist, cifar10) are read with torchvision from --data-dir, never "
        "downloaded. --model pkg.module:fn imports fn; fn(act) builds a model with act(channels, channel_dim=1) "
        "for each activation (it may also take input_shape= and num_classes=), or fn() builds a ReLU model that "
        "prelu.convert swaps."
    ),
}
DEPTH_TEXTS = {
    "help": "a 30-layer plain net with Xavier vs Kaiming init, ReLU and PReLU (He et al., Fig. 3)",
    "description": (
        "Trains a plain deep net (Linear layers, no normalisation) from Xavier and from slope-aware Kaiming "
        "init (prelu.init_model_), with ReLU and PReLU, over several seeds; reports loss curves, whether each "
        "trains (final train loss < 0.9 x initial), the signal at init, learned slopes by depth and the claims; "
        "writes results.json, curves and report.html to runs/<name>/."
    ),
}


def _lab_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    command: str,
    defaults: Mapping[str, object],
    datasets: Sequence[str],
    *,
    help: str,
    description: str,
    epilog: str | None = None,
) -> argparse.ArgumentParser:
    """A lab command's parser: one-line errors and the training flags every experiment shares."""
    parser = one_line_errors(subparsers.add_parser(command, help=help, description=description, epilog=epilog))
    _add_training_flags(parser, defaults, datasets)
    return parser


def add_compare_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``prelu compare``."""
    from prelu.lab import compare, datasets

    parser = _lab_parser(subparsers, "compare", compare.DEFAULTS, datasets.DATASETS, **COMPARE_TEXTS)
    parser.add_argument(
        "--data-dir", default=None, metavar="DIR", help="folder holding mnist / fashion-mnist / cifar10"
    )
    parser.add_argument("--model", default=None, help="mlp (default), cnn, resnet, or pkg.module:fn")
    parser.add_argument("--depth", type=int, default=None, metavar="N", help="hidden layers / conv layers / stages")
    parser.add_argument(
        "--activations", nargs="+", default=None, metavar="NAME", help=f"default {' '.join(compare.ACTIVATIONS)}"
    )
    parser.add_argument(
        "--target",
        type=_fraction,
        default=None,
        metavar="ACC",
        help="accuracy for 'epochs to target' (default: per dataset)",
    )
    parser.add_argument(
        "--init", choices=compare.INITS, default=None, help="kaiming (default, prelu.init_model_) or torch's own"
    )
    parser.set_defaults(handler=run_compare)


def add_depth_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``prelu depth``."""
    from prelu.lab import depth

    parser = _lab_parser(subparsers, "depth", depth.DEFAULTS, depth.DATASETS, **DEPTH_TEXTS)
    parser.add_argument(
        "--layers",
        type=int,
        default=None,
        metavar="N",
        help=f"Linear layers (default {depth.DEFAULTS['layers']})",
    )
    parser.add_argument("--activations", nargs="+", default=None, metavar="NAME", help="default relu prelu")
    parser.add_argument("--inits", nargs="+", default=None, choices=depth.INITS, help="default xavier kaiming")
    parser.set_defaults(handler=run_depth)


def _learning_rate(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a learning rate like 0.01") from None


DYING_TEXTS = {
    "help": "dead units against the learning rate for ReLU, Leaky ReLU and PReLU; decides the dead-units claim",
    "description": (
        "Trains the digits (or mnist-5k) model at a log sweep of learning rates for each activation and seed "
        "(same initial weights and batches per seed), plots dead units, final accuracy and the diverged share "
        "against the learning rate, and decides 'PReLU cuts dead units from ~30% to <5%' where ReLU gets "
        "there; writes results.json, curves and report.html to runs/<name>/."
    ),
}
GAN_TEXTS = {
    "help": "a small GAN with a ReLU, Leaky ReLU (DCGAN) or PReLU discriminator; modes, quality, gradients",
    "description": (
        "Trains a small GAN on 8 Gaussians on a ring (or 8x8 digits) for each discriminator activation and seed "
        "(same generator, discriminator weights and batches per seed); reports modes covered, the share of "
        "high-quality samples, a quality score, the gradient the discriminator passes to the generator, dead "
        "units and diverged runs, and decides 'Leaky ReLU helps GAN training'; writes report.html to "
        "runs/<name>/."
    ),
}


def add_dying_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``prelu dying``."""
    from prelu.lab import dying

    lrs: Sequence[float] = dying.DEFAULTS["lrs"]  # type: ignore[assignment]  # DEFAULTS is dict[str, object]
    parser = _lab_parser(subparsers, "dying", {**dying.DEFAULTS, "lr": "per --lrs"}, dying.DATASETS, **DYING_TEXTS)
    parser.add_argument(
        "--lrs",
        nargs="+",
        type=_learning_rate,
        default=None,
        metavar="LR",
        help=f"learning rates (default {' '.join(f'{lr:g}' for lr in lrs)})",
    )
    parser.add_argument("--model", choices=["mlp", "cnn"], default=None, help="default mlp")
    parser.add_argument("--depth", type=int, default=None, metavar="N", help="hidden layers / conv layers")
    parser.add_argument("--activations", nargs="+", default=None, metavar="NAME", help="default relu leaky_relu prelu")
    parser.set_defaults(handler=run_dying)


def add_gan_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``prelu gan`` (its own flags: steps, not epochs; no dataset of the lab's)."""
    from prelu.lab import gan

    defaults = gan.DEFAULTS
    parser = one_line_errors(subparsers.add_parser("gan", help=GAN_TEXTS["help"], description=GAN_TEXTS["description"]))
    parser.add_argument("--data", choices=gan.DATA, default=None, help=f"default {defaults['data']}")
    parser.add_argument("--activations", nargs="+", default=None, metavar="NAME", help="default relu leaky_relu prelu")
    for flag, key, kind, text in (
        ("--seeds", "seeds", int, "seeds 0..N-1"),
        ("--steps", "steps", int, "training steps"),
        ("--batch-size", "batch_size", int, "batch"),
        ("--width", "width", int, "hidden units of both networks"),
        ("--noise", "noise", int, "noise dimensions"),
        ("--eval-every", "eval_every", int, "steps between measurements"),
        ("--lr", "lr", float, "Adam learning rate"),
    ):
        parser.add_argument(flag, type=kind, default=None, help=f"{text} (default {defaults[key]})")
    parser.add_argument(
        "--name", default=None, help="run folder name under --out, one folder name (default gan-<data>)"
    )
    parser.add_argument("--out", default="runs", metavar="DIR", help="parent of run folders (default runs/)")
    parser.add_argument("--resume", action="store_true", help="continue a run folder, keeping finished runs")
    parser.add_argument(
        "--force", action="store_true", help="delete an existing run folder (only one made by prelu's lab)"
    )
    parser.add_argument("--wait", action="store_true", help="if another process is writing the folder, wait for it")
    parser.add_argument("--threads", type=int, default=None, metavar="N", help="torch threads (default 1)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (one line per finished run stays)")
    parser.set_defaults(handler=run_gan)


def add_parsers(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register every lab command (``prelu compare``, ``depth``, ``dying``, ``gan``) on ``prelu``'s subparsers."""
    add_compare_parser(subparsers)
    add_depth_parser(subparsers)
    add_dying_parser(subparsers)
    add_gan_parser(subparsers)


def _terminate(number: int, frame: FrameType | None) -> None:
    raise Terminated


def _options(args: argparse.Namespace, keys: Iterable[str]) -> dict[str, Any]:
    options = {key: getattr(args, key) for key in keys if hasattr(args, key)}
    if "activations" in options:
        options["activations"] = _names(options["activations"])
    return options


def _guarded(args: argparse.Namespace, start: Callable[[], object]) -> int:
    """Call ``start()`` with SIGTERM handled as Ctrl-C; the exit code (see the module docstring)."""
    from prelu.lab.config import ConfigError

    handles_signals = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if handles_signals else None
    try:
        start()
    except ConfigError as error:
        print(f"prelu {args.command}: error: {error}", file=sys.stderr)
        return 2
    except Terminated:
        print(
            f"prelu {args.command}: terminated (SIGTERM); finished runs are kept, --resume continues", file=sys.stderr
        )
        return SIGTERM_EXIT
    finally:
        if handles_signals:
            signal.signal(signal.SIGTERM, previous)
    return 0


def run_experiment(args: argparse.Namespace, experiment_type: Any) -> int:
    """Run one experiment type from parsed arguments; returns the exit code (see the module docstring)."""
    import torch

    from prelu.lab.experiment import run

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    options = _options(args, experiment_type.defaults)
    folder = {key: getattr(args, key) for key in ("name", "out", "resume", "force", "wait")}
    return _guarded(args, lambda: run(experiment_type, progress=not args.no_progress, **folder, **options))


def run_standalone(args: argparse.Namespace, runner: Callable[..., object], keys: Iterable[str]) -> int:
    """Run a self-contained runner (``gan.run``) from parsed arguments, as :func:`run_experiment`."""
    options = _options(args, keys)
    folder = {key: getattr(args, key) for key in ("name", "out", "resume", "force", "wait")}
    return _guarded(args, lambda: runner(progress=not args.no_progress, **folder, **options))


def run_dying(args: argparse.Namespace) -> int:
    """Run ``prelu dying`` with parsed arguments; returns the exit code (2: bad settings, nothing written)."""
    from prelu.lab.dying import Dying

    if args.lr is not None:
        print("prelu dying: error: give the learning rates with --lrs, not --lr", file=sys.stderr)
        return 2
    return run_experiment(args, Dying)


def run_gan(args: argparse.Namespace) -> int:
    """Run ``prelu gan`` with parsed arguments; returns the exit code (2: bad settings, nothing written)."""
    from prelu.lab import gan

    return run_standalone(args, gan.run, [key for key in gan.DEFAULTS if key != "device"])  # --threads: gan's own


def run_compare(args: argparse.Namespace) -> int:
    """Run ``prelu compare`` with parsed arguments; returns the exit code (2: bad settings, nothing written)."""
    from prelu.lab.compare import Compare

    return run_experiment(args, Compare)


def run_depth(args: argparse.Namespace) -> int:
    """Run ``prelu depth`` with parsed arguments; returns the exit code (2: bad settings, nothing written)."""
    from prelu.lab.depth import Depth

    return run_experiment(args, Depth)
