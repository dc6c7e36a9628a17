"""The Typer applications, the options every command shares (declared once, as `Annotated`
aliases), and the few lines of output the commands have in common."""

from __future__ import annotations

import re
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, List, Optional

import typer

app = typer.Typer(
    help="CAPTCHA robustness testbed around the seed's deep LeNet network.",
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
train_app = typer.Typer(
    help="Train networks: on MNIST, on rendered characters, or an attacker on CAPTCHAs.", rich_markup_mode=None
)
app.add_typer(train_app, name="train")


def _help_without_command(ctx: typer.Context) -> None:
    if ctx.invoked_subcommand is None:  # a bare `captchalab` or `captchalab train`: show the help
        typer.echo(ctx.get_help())
        raise typer.Exit(0)


@app.callback(invoke_without_command=True)
def options(
    ctx: typer.Context,
    verbose: bool = typer.Option(
        False, "--verbose", help="Show TensorFlow's own start-up lines and full tracebacks (hidden by default)."
    ),
):
    from ..runtime import quiet_native_output

    quiet_native_output(verbose)
    _help_without_command(ctx)


@train_app.callback(invoke_without_command=True)
def train_options(ctx: typer.Context):
    _help_without_command(ctx)


class Backend(str, Enum):
    local = "local"
    ray = "ray"


class Method(str, Enum):
    fgsm = "fgsm"
    pgd = "pgd"
    eot = "eot"


CHARSET_HELP = "Character set: digits, lower, upper, alnum, ALNUM, or the characters themselves."
ATTACKER_HELP = "NAME or NAME:name=value,... (hyper-parameters, see `captchalab attackers`)"

Plugins = Annotated[
    Optional[List[Path]], typer.Option("--plugins", help="Extra folder of style and attacker plugins (repeatable).")
]
Params = Annotated[Optional[List[str]], typer.Option("--param", help="Style parameter as name=value (repeatable).")]
HParams = Annotated[
    Optional[List[str]], typer.Option("--hparam", help="Attacker hyper-parameter as name=value (repeatable).")
]
ReadOnlyAttackers = Annotated[
    Optional[List[str]],
    typer.Option(
        "--attacker", help=f"A read-only attacker, e.g. ddddocr or tesseract:psm=8: {ATTACKER_HELP}; repeatable."
    ),
]
Models = Annotated[
    Optional[List[Path]], typer.Option("--model", help="A trained attacker (.keras + .json); repeatable.")
]
DatasetKind = Annotated[
    Optional[str],
    typer.Option(
        "--kind",
        help="Read the --dataset folder's labels as this kind (arithmetic: a filename,text folder of "
        "expressions, scored by value). Default: the kind its header names.",
    ),
]
Charset = Annotated[Optional[str], typer.Option(help=CHARSET_HELP)]
Length = Annotated[
    Optional[str],
    typer.Option(help="Characters per generated CAPTCHA: N or N-M (default 4; text styles only).", show_default=False),
]
Strength = Annotated[float, typer.Option(help="Style difficulty in [0, 1].")]
Workers = Annotated[int, typer.Option(help="Worker processes for rendering and preparing images.")]
Force = Annotated[bool, typer.Option(help="Replace an existing output.")]
Resume = Annotated[bool, typer.Option(help="Continue an interrupted run of the same command.")]
BackendOption = Annotated[Backend, typer.Option(help="Where cells run: local (this machine) or ray (a Ray cluster).")]
Address = Annotated[
    Optional[str], typer.Option(help="With --backend ray: join the cluster at HOST:PORT (default: start one here).")
]
Jobs = Annotated[int, typer.Option(help="With --backend local: cells run at once, each in its own process.")]
Humans = Annotated[
    Optional[List[Path]],
    typer.Option(
        "--humans",
        help="A human-study folder (`captchalab humans --out`) whose answers on these designs join the "
        "report; repeatable.",
    ),
]
Data = Annotated[
    Optional[Path],
    typer.Option(help="MNIST folder (IDX files) or .npz; default: $CAPTCHALAB_MNIST, the Keras cache, a download."),
]


# the library names its own parameters in `backticks`; the command line says its flags instead
FLAGS = {
    "epochs": "--epochs",
    "batch_size": "--batch-size",
    "eps": "--eps",
    "method": "--method",
    "steps": "--steps",
    "target_text": "--target-text",
    "transfer": "--transfer",
    "strength": "--strength",
    "models": "--model",
    "out": "--out",
    "start": "--from",
    "hold": "--hold",
    "datasets": "--dataset",
    "humans": "--humans",
    "alternatives": "--alternative",
    "profiles": "--profile",
    "participants": "--participants",
    "force": "--force",
    "char": "--char",
    "attackers": "--attacker",
    "unlabelled": "--unlabelled",
    "style": "--style",
    "dataset": "--dataset",
    "params": "--param",
    "param": "--param",
    "count": "--count",
    "length": "--length",
    "charset": "--charset",
    "expect": "--expect",
    "train_count": "--train-count",
    "max_cells": "--max-cells",
    "resume": "--resume",
    "defences": "--defences",
    "jobs": "--jobs",
    "address": "--address",
    "backend": "--backend",
    "fresh": "--fresh",
    "plugin_dirs": "--plugins",
    "port": "--port",
    "data": "--data",
    "answers_per_item": "--answers-per-item",
    "per_person": "--per-person",
    "practice": "--practice",
    "attention": "--attention",
    "adversarial_against": "--adversarial-against",
    "test": "--test",
    "kind": "--kind",
}


def as_flags(message: str) -> str:
    """A library message as the command line says it: each `parameter` named by its flag."""
    return re.sub(r"`([a-z_]+)`", lambda m: FLAGS.get(m.group(1), m.group(0)), message)


def dirs(plugins: Optional[List[Path]]) -> list[str]:
    return [str(p) for p in plugins or []]


def progress_level() -> int:
    return 1 if sys.stdout.isatty() else 0  # Keras draws its progress bars on stdout: only on a terminal


def say(message: str) -> None:
    typer.echo(message, err=True)


def epoch_reporter(epochs: Optional[int] = None):
    def report(epoch, record):
        held_out = record.get("val_accuracy")
        say(
            f"epoch {epoch}{f'/{epochs}' if epochs else ''}: "
            + (
                f"validation accuracy {held_out:.4f}"
                if held_out is not None
                else f"training loss {record.get('loss', float('nan')):.4f} (nothing held out)"
            )
            + (
                f"; learning rate x{record['learning_rate_scale']:g}"
                if record.get("learning_rate_scale", 1) < 1
                else ""
            )
        )

    return report


def cell_reporter(total: int | None = None):
    """One line per finished cell, with the time left at the pace so far (`total`: the cells to
    run, else what the progress says)."""

    def report(result, progress):
        all_cells = total or progress.ran + progress.left
        state = "done" if result.get("status") == "done" else f"failed: {result.get('error', '')[:120]}"
        name = result.get("id") or ", ".join(f"{k}={v}" for k, v in (result.get("coords") or {}).items())
        pace = progress.seconds / progress.ran
        say(f"[{progress.ran}/{all_cells}] {name}: {state}; {pace:.1f} s/cell, about {pace * progress.left:.0f} s left")

    return report


def make_backend(backend: Backend, address: Optional[str], jobs: int):
    from .. import runtime
    from ..study.backends import make_backend as make

    return make(backend.value, address, jobs, verbose=runtime.VERBOSE, notice=say)


def split_names(text: str, option: str) -> list[str]:
    names = [s.strip() for s in text.split(",") if s.strip()]
    if not names:
        from ..errors import CaptchalabError

        raise CaptchalabError(f"{option} is empty")
    return names


def fresh_or_resumed(out: Path, resume: bool, force: bool) -> None:
    """A grid continues in its folder with --resume, replaces it with --force, else needs it empty."""
    import shutil
    from ..fileio import refuse_existing

    if resume:
        return
    refuse_existing(out, force)
    if force and out.is_dir():
        shutil.rmtree(out)
