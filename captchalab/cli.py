"""The `captchalab` command line: a thin layer over the library.

Every user-facing failure becomes one line on stderr and a non-zero exit.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import List, Optional

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out

import typer

from typer import Abort

try:  # recent typer versions vendor click; older ones depend on it
    from typer._click.exceptions import ClickException
except ImportError:  # pragma: no cover - depends on the installed typer
    from click.exceptions import ClickException

from .errors import CaptchalabError

app = typer.Typer(help="CAPTCHA robustness testbed around the seed's deep LeNet network.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  rich_markup_mode=None)
train_app = typer.Typer(help="Train the network on MNIST or on CAPTCHA characters.",
                        no_args_is_help=True, rich_markup_mode=None)
app.add_typer(train_app, name="train")


PROGRESS = 1 if sys.stdout.isatty() else 0  # Keras progress bars only on a terminal


def say(message: str) -> None:
    typer.echo(message, err=True)


def _plugin_dirs(plugins: Optional[List[Path]]) -> list[str]:
    return [str(p) for p in plugins or []]


PLUGINS_OPTION = typer.Option(None, "--plugins", help="Extra folder of generator plugins (repeatable).")
PARAM_OPTION = typer.Option(None, "--param", help="Generator parameter as name=value (repeatable).")


def generation_spec(style: str, count: int, length: str, charset: str, seed: int, strength: float,
                    params: Optional[List[str]], plugins: Optional[List[Path]]):
    from .dataset import GenerationSpec, parse_charset, parse_length
    from .plugins import get_generator
    dirs = _plugin_dirs(plugins)
    generator = get_generator(style, dirs)
    low, high = parse_length(length)
    spec = GenerationSpec(style=style, count=count, min_length=low, max_length=high,
                          charset=parse_charset(charset), seed=seed, strength=strength,
                          params=generator.parse_params(params or []), plugin_dirs=tuple(dirs))
    spec.check()
    return spec


@train_app.command("mnist")
def train_mnist_cmd(
    data: Optional[Path] = typer.Option(None, help="MNIST folder (IDX files) or .npz; "
                                        "default: $CAPTCHALAB_MNIST, Keras cache, download."),
    epochs: int = typer.Option(5, help="Training epochs."),
    batch_size: int = typer.Option(128, help="Batch size."),
    seed: int = typer.Option(0, help="Random seed."),
    out: Path = typer.Option(Path("models/mnist.keras"), help="Model file to write (.keras)."),
    resume: bool = typer.Option(False, help="Continue an interrupted run of the same command."),
):
    """Train the deep LeNet network on MNIST and evaluate it on the official test set."""
    from .mnist import load_mnist
    from .train import TrainConfig, check_model_path, train_mnist
    config = TrainConfig(epochs=epochs, batch_size=batch_size, seed=seed)
    config.check()
    check_model_path(out)
    mnist = load_mnist(data)
    say(f"MNIST from {mnist.source}: {len(mnist.x_train)} training, {len(mnist.x_test)} test images")
    info = train_mnist(mnist, out, config, resume=resume, verbose=PROGRESS,
                       on_epoch=lambda e, r: say(f"epoch {e}/{epochs}: validation accuracy "
                                                 f"{r['val_accuracy']:.4f}"))
    say(f"test accuracy {info['test_accuracy']:.4f}; "
        f"{info['train_images_per_second']:.0f} training images/s; "
        f"{info['wall_seconds']:.0f} s in all")
    typer.echo(str(out))


DEFAULT_MNIST_MODEL = Path("models/mnist.keras")


def ensure_mnist_model(path: Path) -> Path:
    """The MNIST model to start from; trained first with the `train mnist` defaults if missing."""
    if path.is_file():
        return path
    if path != DEFAULT_MNIST_MODEL:
        raise CaptchalabError(f"--from model {path} does not exist")
    from .mnist import load_mnist
    from .train import TrainConfig, train_mnist
    say(f"{path} is missing: training it first with the `train mnist` defaults")
    mnist = load_mnist(None)
    info = train_mnist(mnist, path, TrainConfig(), verbose=PROGRESS)
    say(f"{path}: test accuracy {info['test_accuracy']:.4f}")
    return path


def make_source(style: Optional[str], dataset: Optional[Path], count: int, length: str, seed: int,
                strength: float, params, plugins):
    from .attack import Source
    from .dataset import read_dataset
    if (style is None) == (dataset is None):
        raise CaptchalabError("give exactly one of --style and --dataset")
    if dataset is not None:
        if params:
            raise CaptchalabError("--param applies to --style, not to --dataset")
        return Source(dataset=read_dataset(dataset))
    return Source(spec=generation_spec(style, count, length, "digits", seed, strength, params, plugins))


@train_app.command("captcha")
def train_captcha_cmd(
    style: Optional[str] = typer.Option(None, help="Generate the training CAPTCHAs with this style."),
    dataset: Optional[Path] = typer.Option(None, help="Or train on this dataset folder (labels.csv)."),
    count: int = typer.Option(3000, help="CAPTCHAs to generate (with --style)."),
    length: str = typer.Option("4", help="Characters per generated CAPTCHA: N or N-M."),
    strength: float = typer.Option(0.5, help="Generator difficulty in [0, 1]."),
    param: Optional[List[str]] = PARAM_OPTION,
    seed: int = typer.Option(1, help="Seed for generation, validation split and training."),
    from_: str = typer.Option(str(DEFAULT_MNIST_MODEL), "--from",
                              help="Start from this model's weights, or 'scratch'."),
    epochs: int = typer.Option(8, help="Training epochs."),
    batch_size: int = typer.Option(128, help="Batch size."),
    workers: int = typer.Option(2, help="Segmentation worker processes."),
    out: Optional[Path] = typer.Option(None, help="Model to write (default models/<style or dataset>.keras)."),
    resume: bool = typer.Option(False, help="Continue an interrupted run of the same command."),
    plugins: Optional[List[Path]] = PLUGINS_OPTION,
):
    """Train the network on segmented CAPTCHA characters (transfer learning from MNIST by default)."""
    from .train import CAPTCHA_TRAINING, TrainConfig, check_model_path, train_captcha
    config = TrainConfig(**{**CAPTCHA_TRAINING, "epochs": epochs, "batch_size": batch_size, "seed": seed})
    config.check()
    source = make_source(style, dataset, count, length, seed, strength, param, plugins)
    out = check_model_path(out or Path("models") / f"{style or Path(dataset).resolve().name}.keras")
    init = None if from_ == "scratch" else ensure_mnist_model(Path(from_))
    say(f"segmenting {len(source)} CAPTCHAs, then training from {init or 'scratch'}")
    info = train_captcha(source, out, init, config, workers=workers, resume=resume, verbose=PROGRESS,
                         on_epoch=lambda e, r: say(f"epoch {e}/{epochs}: validation accuracy "
                                                   f"{r['val_accuracy']:.4f}"))
    say(f"{info['crops_used']} crops from {info['captchas_used']} of {info['captchas']} CAPTCHAs "
        f"({info['miscounted']} mis-segmented, {info['unreadable']} unreadable); "
        f"validation accuracy {info['val_accuracy']:.4f}")
    typer.echo(str(out))


@app.command()
def attack(
    model: Path = typer.Option(..., help="Trained model (.keras)."),
    style: Optional[str] = typer.Option(None, help="Attack freshly generated CAPTCHAs of this style."),
    dataset: Optional[Path] = typer.Option(None, help="Or attack this dataset folder (labels.csv)."),
    count: int = typer.Option(1000, help="CAPTCHAs to generate (with --style)."),
    length: str = typer.Option("4", help="Characters per generated CAPTCHA: N or N-M."),
    seed: int = typer.Option(2, help="Generation seed (use another one than for training)."),
    strength: float = typer.Option(0.5, help="Generator difficulty in [0, 1]."),
    param: Optional[List[str]] = PARAM_OPTION,
    expect: Optional[int] = typer.Option(None, help="Characters per CAPTCHA told to the segmenter "
                                         "(default: the fixed length when all CAPTCHAs share one)."),
    workers: int = typer.Option(2, help="Segmentation worker processes."),
    out: Optional[Path] = typer.Option(None, help="Report folder (default results/attack-<source>)."),
    plugins: Optional[List[Path]] = PLUGINS_OPTION,
):
    """Segment and read CAPTCHAs with a trained model; write report.json, .md, .html and plots."""
    from .attack import attack_source
    from .model import load_model
    from .report import write_attack_report
    source = make_source(style, dataset, count, length, seed, strength, param, plugins)
    out = out or Path("results") / f"attack-{style or Path(dataset).resolve().name}"
    net = load_model(model)
    with typer.progressbar(length=len(source), label="attacking", file=sys.stderr) as bar:
        result, misread = attack_source(net, source, expect, workers, bar.update)
    result["model"] = str(model)
    write_attack_report(out, result, misread)
    say(f"CAPTCHA accuracy {result['captcha_accuracy']:.2%}, character accuracy "
        f"{result['char_accuracy']:.2%}, segmentation rate {result['segmentation_rate']:.2%}, "
        f"{result['captchas_per_second']:.0f} CAPTCHAs/s")
    typer.echo(str(out / "report.html"))


@app.command()
def generate(
    style: str = typer.Option(..., help="Generator style (see `captchalab generators`)."),
    count: int = typer.Option(1000, help="Number of CAPTCHAs."),
    length: str = typer.Option("4", help="Characters per CAPTCHA: N or a range N-M."),
    charset: str = typer.Option("digits", help="'digits' or the characters to draw from."),
    seed: int = typer.Option(0, help="Random seed; the same seed gives byte-identical files."),
    strength: float = typer.Option(0.5, help="Difficulty in [0, 1]."),
    param: Optional[List[str]] = PARAM_OPTION,
    workers: int = typer.Option(1, help="Worker processes."),
    out: Optional[Path] = typer.Option(None, help="Dataset folder (default: data/<style>-s<seed>)."),
    preview: bool = typer.Option(False, help="Also write preview.png, a contact sheet."),
    force: bool = typer.Option(False, help="Replace a non-empty output folder."),
    plugins: Optional[List[Path]] = PLUGINS_OPTION,
):
    """Generate a CAPTCHA dataset folder: PNGs, labels.csv, boxes.json, manifest.json."""
    from .dataset import generate_dataset
    spec = generation_spec(style, count, length, charset, seed, strength, param, plugins)
    if workers < 1:
        raise CaptchalabError(f"--workers must be at least 1, got {workers}")
    out = out or Path("data") / f"{style}-s{seed}"
    with typer.progressbar(length=count, label=f"generating {style}", file=sys.stderr) as bar:
        generate_dataset(spec, out, workers=workers, force=force, preview=16 if preview else 0,
                         on_progress=bar.update)
    typer.echo(str(out))


@app.command()
def generators(plugins: Optional[List[Path]] = PLUGINS_OPTION):
    """List every generator style with its description and parameters."""
    from .generator import SOURCES
    from .plugins import load_errors, load_generators
    registry = load_generators(_plugin_dirs(plugins))
    for name in sorted(registry):
        gen = registry[name]
        typer.echo(f"{name}: {gen.description}")
        typer.echo(f"    source: {SOURCES.get(name, '?')}")
        for p in gen.params:
            typer.echo(f"    --param {p.describe()}")
    for error in load_errors:
        say(f"warning: broken plugin skipped: {error}")


def main() -> None:
    try:
        app(standalone_mode=False)
    except CaptchalabError as exc:
        say(f"error: {exc}")
        sys.exit(1)
    except Abort:
        say("error: interrupted")
        sys.exit(130)
    except ClickException as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # bare `captchalab`: show the help
            typer.echo(exc.format_message())
            sys.exit(0)
        say(f"error: {exc.format_message()}" + (f" (see `{exc.ctx.command_path} --help`)"
                                                 if getattr(exc, "ctx", None) else ""))
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        say("error: interrupted")
        sys.exit(130)
