"""`captchalab train mnist | chars | captcha`, and `captchalab ensemble` of trained models."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import CaptchalabError
from .app import (
    CHARSET_HELP,
    Data,
    DatasetKind,
    Force,
    HParams,
    Length,
    Models,
    Params,
    Plugins,
    Resume,
    Strength,
    Workers,
    app,
    dirs,
    epoch_reporter,
    progress_level,
    say,
    train_app,
)

# the options of `train captcha` whose help runs long
Unlabelled = Annotated[
    Optional[Path],
    typer.Option(
        help="Also learn from this folder of unlabelled CAPTCHAs "
        "(pseudo-labels from a mean teacher; ctc and the tile readers)."
    ),
]
TrainedAttacker = Annotated[
    Optional[str],
    typer.Option(
        help="Which attacker to train: NAME or NAME:name=value,... (see `captchalab attackers`; default segment for "
        "text CAPTCHAs, tilecnn for image grids, detfeat and detsquares for 3x3 and 4x4 grids of photographs, or the style's own)."
    ),
]
TrainCharset = Annotated[
    Optional[str],
    typer.Option(help=CHARSET_HELP + " Default: digits for --style, the dataset's own set for --dataset."),
]
Fresh = Annotated[
    bool,
    typer.Option(
        help="With --style: draw new training CAPTCHAs every epoch (the generator is "
        "free); the first draw's held-out part still validates."
    ),
]
StartFrom = Annotated[
    str,
    typer.Option(
        "--from",
        help="Start from this model's weights, 'scratch', or 'base': the "
        "attacker's declared start (MNIST or rendered characters for segment, a "
        "mixture of built-in styles for ctc), trained first if missing.",
    ),
]
Epochs = Annotated[
    Optional[int],
    typer.Option(
        help="At most this many passes over the training set (default: train "
        "until the validation score converges, within the budget)."
    ),
]
Budget = Annotated[
    Optional[int], typer.Option(help="Training examples seen at most (default: the attacker's budget hyper-parameter).")
]
TimeLimit = Annotated[
    Optional[float],
    typer.Option(help="Stop after this many seconds of training; a run it stops is recorded as not converged."),
]


def _model_out(out: Path, force: bool, resume: bool) -> Path:
    from ..fileio import refuse_existing
    from ..train import check_model_path

    out = check_model_path(out)
    if not resume:
        refuse_existing(out, force)
    return out


@train_app.command("mnist")
def train_mnist_cmd(
    data: Data = None,
    epochs: int = typer.Option(7, help="Training epochs."),
    batch_size: int = typer.Option(128, help="Batch size."),
    seed: int = typer.Option(0, help="Random seed."),
    out: Path = typer.Option(Path("models/mnist.keras"), help="Model file to write (.keras)."),
    resume: Resume = False,
    force: Force = False,
):
    """Train the deep LeNet network on MNIST and evaluate it on the official test set."""
    from ..data.mnist import load_mnist
    from ..train import TrainConfig, train_mnist

    config = TrainConfig(epochs=epochs, batch_size=batch_size, seed=seed)
    config.check()
    out = _model_out(out, force, resume)
    mnist = load_mnist(data)
    say(f"MNIST from {mnist.source}: {len(mnist.x_train)} training, {len(mnist.x_test)} test images")
    info = train_mnist(mnist, out, config, resume=resume, verbose=progress_level(), on_epoch=epoch_reporter(epochs))
    say(
        f"test accuracy {info['test_accuracy']:.4f}; {info['train_images_per_second']:.0f} training images/s; "
        f"{info['wall_seconds']:.0f} s in all"
    )
    typer.echo(str(out))


@train_app.command("chars")
def train_chars_cmd(
    charset: str = typer.Option("alnum", help=CHARSET_HELP),
    count: int = typer.Option(40000, help="Rendered training characters."),
    test_count: int = typer.Option(5000, help="Held-out rendered characters (another seed) to test on."),
    epochs: int = typer.Option(6, help="Training epochs."),
    batch_size: int = typer.Option(128, help="Batch size."),
    seed: int = typer.Option(0, help="Random seed."),
    out: Optional[Path] = typer.Option(None, help="Model to write (default models/chars-<charset>.keras)."),
    resume: Resume = False,
    force: Force = False,
):
    """Train the network on single characters rendered from the bundled fonts (the starting
    weights for letters, as MNIST is for digits)."""
    from ..charset import parse_charset
    from ..pretrained import chars_path
    from ..train import CHARS_TRAINING, TrainConfig, train_chars

    chars = parse_charset(charset)
    config = TrainConfig(**{**CHARS_TRAINING, "epochs": epochs, "batch_size": batch_size, "seed": seed})
    config.check()
    out = _model_out(out or chars_path(chars), force, resume)
    info = train_chars(chars, out, config, count, test_count, resume, progress_level(), epoch_reporter(epochs))
    pairs = ", ".join(f"{p['truth']}->{p['guess']} ({p['count']})" for p in info["most_confused"][:5])
    say(
        f"held-out accuracy {info['test_accuracy']:.4f}; most confused: {pairs or 'none'}; "
        f"{info['wall_seconds']:.0f} s in all"
    )
    typer.echo(str(out))


@train_app.command("captcha")
def train_captcha_cmd(
    style: Optional[str] = typer.Option(None, help="Generate the training CAPTCHAs with this style."),
    dataset: Optional[Path] = typer.Option(None, help="Or train on this dataset folder (labels.csv)."),
    unlabelled: Unlabelled = None,
    kind: DatasetKind = None,
    attacker: TrainedAttacker = None,
    charset: TrainCharset = None,
    hparam: HParams = None,
    count: int = typer.Option(3000, help="CAPTCHAs to generate (with --style)."),
    fresh: Fresh = False,
    length: Length = None,
    strength: Strength = 0.5,
    param: Params = None,
    seed: int = typer.Option(1, help="Seed for generation, validation split and training."),
    from_: StartFrom = "base",
    epochs: Epochs = None,
    budget: Budget = None,
    time_limit: TimeLimit = None,
    batch_size: Optional[int] = typer.Option(None, help="Batch size (default: the attacker's)."),
    learning_rate: Optional[float] = typer.Option(None, help="Peak learning rate (default: the attacker's)."),
    workers: Workers = 2,
    out: Optional[Path] = typer.Option(
        None, help="Model to write (default models/<attacker>-<style or dataset>.keras)."
    ),
    resume: Resume = False,
    force: Force = False,
    plugins: Plugins = None,
):
    """Train an attacker on CAPTCHAs (by default starting from weights that already read characters)."""
    from ..attackers.base import TrainSettings
    from ..charset import parse_charset
    from ..data.dataset import make_source, read_unlabelled
    from ..pretrained import starting_model
    from ..train import check_fresh, check_semi_supervised, train_attacker

    for option, value in (("--epochs", epochs), ("--budget", budget), ("--time-limit", time_limit)):
        if value is not None and value <= 0:
            raise CaptchalabError(f"{option} must be positive, got {value}")
    chars = parse_charset(charset) if charset else None
    source = make_source(style, dataset, count, length, seed, strength, param, dirs(plugins), chars, kind=kind)
    scraped = read_unlabelled(unlabelled, dataset) if unlabelled is not None else None
    chars = chars or source.charset
    reader = _trainable_reader(attacker, source, style or dataset, chars, hparam or [], dirs(plugins))
    if scraped is not None:
        check_semi_supervised(reader)  # now, not after its base has been trained
    if fresh:
        check_fresh(reader, source)
    name = style or Path(dataset).resolve().name
    out = _model_out(out or Path("models") / f"{reader.name}-{name}.keras", force, resume)
    init = starting_model(
        from_, reader.name, chars, say, progress_level(), epoch_reporter(), dirs(plugins), reader.hparams
    )
    say(f"preparing {len(source)} CAPTCHAs, then training {reader.name} from {init or 'scratch'}")
    settings = TrainSettings(epochs, batch_size, learning_rate, seed, budget=budget, wall_seconds=time_limit)
    info = train_attacker(
        reader,
        source,
        out,
        settings,
        init,
        workers,
        resume,
        progress_level(),
        epoch_reporter(epochs),
        dirs(plugins),
        unlabelled=scraped,
        fresh=fresh,
    )
    _say_trained(info, bool(init))
    typer.echo(str(out))


def _trainable_reader(spec: str | None, source, what, chars: str, assignments: list[str], plugin_dirs: list[str]):
    """The attacker `train captcha` trains: the one named (default: the dataset's reader or the
    kind's), with --hparam applied, refused when it reads another kind or cannot be trained."""
    from ..attackers.base import make_attacker
    from ..kinds import get_kind, reads
    from ..plugins import get_attacker
    from ..registry import split_attacker_spec

    spec = spec or source.reader or get_kind(source.kind).default_attacker
    chosen = get_attacker(split_attacker_spec(spec)[0], plugin_dirs)
    if not reads(chosen.kind, source.kind):  # said now, before a base is trained for it
        raise CaptchalabError(
            f"attacker {chosen.name!r} reads {chosen.kind} CAPTCHAs; {what} holds {source.kind} CAPTCHAs"
        )
    reader = make_attacker(spec, chars, plugin_dirs)
    reader = type(reader)(
        chars, {**reader.hparams, **reader.parse_params(assignments)}, info={"plugin_dirs": plugin_dirs}
    )
    if not reader.trainable:
        raise CaptchalabError(f"attacker {reader.name!r} cannot be trained (it is read-only)")
    return reader


def _say_trained(info: dict, started_from_a_model: bool) -> None:
    """What a `train captcha` run did, in a few lines: what it started from, warnings, the
    unlabelled CAPTCHAs it used, validation, and its convergence verdict."""
    from ..report import describe_verdict

    if started_from_a_model and info["initialised_from"] == "scratch":
        say(info["initialised_weights"])
    for warning in info.get("warnings") or []:
        say(f"warning: {warning}")
    if info.get("unlabelled"):
        pseudo = info.get("pseudo_labelling", {})
        used, unit = pseudo.get("pseudo_labelled_per_epoch") or [0], pseudo.get("unit", "CAPTCHAs")
        of_them = " of them" if unit == "CAPTCHAs" else f" of their {unit}"
        said = (
            ", ".join(map(str, used)) + of_them + ", epoch by epoch"
            if len(used) <= 8
            else f"{min(used)}-{max(used)}{of_them} an epoch over {len(used)} epochs (first {used[0]}, last {used[-1]})"
        )
        say(
            f"{info['unlabelled']['count']} unlabelled CAPTCHAs ({info['unlabelled']['skipped']} unreadable, "
            f"skipped); the teacher pseudo-labelled {said}"
        )
    used = (
        f"{info['captchas_used']} of {info['captchas']} CAPTCHAs cut into the right number of characters; "
        if "captchas_used" in info
        else f"{info['captchas']} CAPTCHAs; "
    )
    val = info.get("val_accuracy")
    say(
        f"{used}{info['unreadable']} unreadable; validation accuracy "
        f"{f'{val:.4f}' if val is not None else 'not measured (nothing held out)'}; {info['wall_seconds']:.0f} s"
    )
    say(describe_verdict(info.get("convergence")))


@app.command()
def ensemble(
    model: Models = None,
    out: Path = typer.Option(..., help="Model to write (.keras, with its JSON)."),
    force: Force = False,
    plugins: Plugins = None,
):
    """One model from several trained ones of the same attacker: their scores averaged."""
    from ..ensemble import ensemble_models
    from ..report import describe_verdict

    info = ensemble_models(model or [], out, force, dirs(plugins))
    say(
        f"{len(info['ensemble']['members'])} {info['attacker']} models averaged; "
        + describe_verdict(info["convergence"])
    )
    typer.echo(str(out))
