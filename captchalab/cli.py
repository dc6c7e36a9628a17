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
from .fileio import check_empty_or_force

app = typer.Typer(help="CAPTCHA robustness testbed around the seed's deep LeNet network.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  rich_markup_mode=None)
train_app = typer.Typer(help="Train the network on MNIST or on CAPTCHA characters.",
                        no_args_is_help=True, rich_markup_mode=None)
app.add_typer(train_app, name="train")


PROGRESS = 1 if sys.stdout.isatty() else 0  # Keras progress bars only on a terminal


def say(message: str) -> None:
    typer.echo(message, err=True)


def epoch_reporter(epochs: int):
    return lambda epoch, record: say(f"epoch {epoch}/{epochs}: validation accuracy {record['val_accuracy']:.4f}")


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
    info = train_mnist(mnist, out, config, resume=resume, verbose=PROGRESS, on_epoch=epoch_reporter(epochs))
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
    config = TrainConfig()
    info = train_mnist(mnist, path, config, verbose=PROGRESS, on_epoch=epoch_reporter(config.epochs))
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
                         on_epoch=epoch_reporter(epochs))
    say(f"{info['crops_used']} crops from {info['captchas_used']} of {info['captchas']} CAPTCHAs "
        f"({info['miscounted']} mis-segmented, {info['unreadable']} unreadable); "
        f"validation accuracy {info['val_accuracy']:.4f}")
    typer.echo(str(out))


@app.command()
def attack(
    model: Path = typer.Option(..., help="Trained model (.keras)."),
    style: Optional[str] = typer.Option(None, help="Attack freshly generated CAPTCHAs of this style."),
    styles: Optional[str] = typer.Option(None, help="Or several styles, comma-separated: one report "
                                         "with per_style results."),
    dataset: Optional[Path] = typer.Option(None, help="Or attack this dataset folder (labels.csv)."),
    count: int = typer.Option(1000, help="CAPTCHAs to generate (with --style)."),
    length: str = typer.Option("4", help="Characters per generated CAPTCHA: N or N-M."),
    seed: int = typer.Option(2, help="Generation seed (use another one than for training)."),
    strength: float = typer.Option(0.5, help="Generator difficulty in [0, 1]."),
    param: Optional[List[str]] = PARAM_OPTION,
    expect: Optional[int] = typer.Option(None, help="Characters per CAPTCHA told to the segmenter "
                                         "(default: the fixed length when all CAPTCHAs share one)."),
    workers: int = typer.Option(2, help="Segmentation worker processes (0: in this process)."),
    out: Optional[Path] = typer.Option(None, help="Report folder (default results/attack-<source>)."),
    plugins: Optional[List[Path]] = PLUGINS_OPTION,
):
    """Segment and read CAPTCHAs with a trained model; write report.json, .md, .html and plots."""
    from .attack import attack_many
    from .model import load_model
    from .report import write_attack_report
    if styles is not None:
        if style is not None or dataset is not None:
            raise CaptchalabError("give only one of --style, --styles and --dataset")
        names = _split_styles(styles, "--styles")
        sources = {n: make_source(n, None, count, length, seed, strength, param, plugins) for n in names}
        label = "-".join(names)
    else:
        sources = {style or "dataset": make_source(style, dataset, count, length, seed, strength, param, plugins)}
        label = style or Path(dataset).resolve().name
    out = out or Path("results") / f"attack-{label}"
    check_empty_or_force(out, False, ours="report.json")  # fail now, not after the attack
    net = load_model(model)
    total = sum(len(s) for s in sources.values())
    with typer.progressbar(length=total, label="attacking", file=sys.stderr) as bar:
        result, misread = attack_many(net, sources, expect, workers, bar.update)
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


def _visual_input(model_data: Optional[Path], index: Optional[int], image: Optional[Path],
                  char: Optional[int], index_flag: str, image_flag: str):
    """(28x28 image, label) from an MNIST test index or an image file."""
    from .dataset import load_image
    from .visualize import prepare_image
    if (index is None) == (image is None):
        raise CaptchalabError(f"give exactly one of {index_flag} and {image_flag}")
    if index is not None:
        from .mnist import load_mnist
        mnist = load_mnist(model_data)
        if not 0 <= index < len(mnist.x_test):
            raise CaptchalabError(f"{index_flag} {index} is out of range: the MNIST test set has "
                                  f"{len(mnist.x_test)} images (0..{len(mnist.x_test) - 1})")
        return mnist.x_test[index], f"mnist #{index} (label {int(mnist.y_test[index])})", f"mnist-{index}"
    picture = load_image(image)
    if picture is None:
        raise CaptchalabError(f"cannot read image {image}")
    label = image.name + (f" char {char}" if char is not None else "")
    return prepare_image(picture, char), label, image.stem + (f"-char{char}" if char is not None else "")


@app.command()
def visualize(
    model: Path = typer.Option(..., help="Trained model (.keras)."),
    mnist_index: Optional[int] = typer.Option(None, help="MNIST test image to show."),
    image: Optional[Path] = typer.Option(None, help="Or an image file: a digit or a whole CAPTCHA."),
    char: Optional[int] = typer.Option(None, help="With a CAPTCHA --image: which character (0-based)."),
    compare_index: Optional[int] = typer.Option(None, help="Compare with this MNIST test image."),
    compare_image: Optional[Path] = typer.Option(None, help="Or compare with this image file."),
    data: Optional[Path] = typer.Option(None, help="MNIST location for the index options."),
    out: Optional[Path] = typer.Option(None, help="Output folder (default results/visualize/<name>)."),
):
    """Draw what every layer does for one input (and, optionally, a second one side by side)."""
    from .fileio import atomic_dir
    from .model import load_model
    from .visualize import render_all
    first, label, name = _visual_input(data, mnist_index, image, char, "--mnist-index", "--image")
    other = other_label = None
    if compare_index is not None or compare_image is not None:
        other, other_label, other_name = _visual_input(data, compare_index, compare_image, None,
                                                     "--compare-index", "--compare-image")
        name = f"{name}-vs-{other_name}"
    net = load_model(model)
    out = out or Path("results") / "visualize" / name
    with atomic_dir(out, ours="index.html") as tmp:
        summary = render_all(net, first, tmp, label, other, other_label)
    say(f"predicted {summary['prediction']}"
        + (f" vs {summary['compare_prediction']}; most apart at {summary['most_apart']}" if other is not None else "")
        + f"; rendered in {summary['render_seconds']:.1f} s")
    typer.echo(str(out / "index.html"))


def _split_styles(text: str, option: str) -> list[str]:
    names = [s.strip() for s in text.split(",") if s.strip()]
    if not names:
        raise CaptchalabError(f"{option} is empty")
    return names


@app.command()
def sweep(
    model: Path = typer.Option(..., help="The attacker (.keras) to test at every step."),
    style: str = typer.Option(..., help="Generator style to sweep."),
    strength: Optional[str] = typer.Option(None, help="Sweep the strength: A:B:N (N evenly spaced values)."),
    param: Optional[str] = typer.Option(None, "--param", help="Or sweep a parameter: name=A:B:N."),
    count: int = typer.Option(1000, help="CAPTCHAs attacked per step."),
    seed: int = typer.Option(100, help="Seed of the first step (step i uses seed + i)."),
    retrain: bool = typer.Option(False, help="Also train a fresh attacker on each step's generator."),
    train_count: int = typer.Option(2000, help="Training CAPTCHAs per retrained attacker."),
    train_epochs: int = typer.Option(4, help="Epochs per retrained attacker."),
    workers: int = typer.Option(2, help="Segmentation worker processes."),
    out: Optional[Path] = typer.Option(None, help="Report folder (default results/sweep-<style>-<knob>)."),
    resume: bool = typer.Option(False, help="Continue an interrupted sweep in --out."),
    plugins: Optional[List[Path]] = PLUGINS_OPTION,
):
    """Attack a generator at N evenly spaced values of its strength or of one parameter."""
    import time as _time
    from .model import load_model
    from .plugins import get_generator
    from .sweep import SweepConfig, parse_range, run_sweep
    if (strength is None) == (param is None):
        raise CaptchalabError("give exactly one of --strength A:B:N and --param name=A:B:N")
    if strength is not None:
        knob, values = "strength", parse_range(strength, "--strength")
    else:
        knob, sep, spec = param.partition("=")
        if not sep:
            raise CaptchalabError(f"--param {param!r}: expected name=A:B:N")
        get_generator(style, _plugin_dirs(plugins)).param(knob)
        values = parse_range(spec, "--param")
    config = SweepConfig(model=str(model), style=style, knob=knob, values=values, count=count, seed=seed,
                         retrain=retrain, train_count=train_count, train_epochs=train_epochs,
                         workers=workers, plugin_dirs=tuple(_plugin_dirs(plugins)))
    config.check()
    out = out or Path("results") / f"sweep-{style}-{knob}"
    net = load_model(model)

    def progress(step, ran, left, elapsed):
        state = (f"CAPTCHA accuracy {step['captcha_accuracy']:.2%}" if step["status"] == "done"
                 else f"failed: {step['error']}")
        say(f"step {step['step'] + 1}/{len(values)} ({knob} = {step['value']}): {state}; "
            f"{elapsed / ran:.1f} s/step, about {elapsed / ran * left:.0f} s left")

    start = _time.perf_counter()
    report = run_sweep(net, config, out, resume=resume, on_step=progress)
    failed = sum(s["status"] == "failed" for s in report["steps"])
    say(f"{len(report['steps'])} steps ({failed} failed) in {_time.perf_counter() - start:.0f} s")
    typer.echo(str(out / "report.html"))


@app.command()
def matrix(
    train_styles: str = typer.Option(..., help="Styles to train attackers on, comma-separated."),
    test_styles: str = typer.Option(..., help="Styles to attack, comma-separated."),
    count: int = typer.Option(500, help="CAPTCHAs attacked per cell."),
    train_count: int = typer.Option(2000, help="Training CAPTCHAs per attacker."),
    epochs: int = typer.Option(4, help="Epochs per attacker."),
    strength: float = typer.Option(0.5, help="Generator strength for every style."),
    from_: str = typer.Option(str(DEFAULT_MNIST_MODEL), "--from", help="Start attackers from this model, or 'scratch'."),
    workers: int = typer.Option(2, help="Segmentation worker processes."),
    out: Optional[Path] = typer.Option(None, help="Report folder (default results/matrix)."),
    plugins: Optional[List[Path]] = PLUGINS_OPTION,
):
    """Train one attacker per training style, attack every test style, draw the accuracy heat map."""
    from .sweep import run_matrix
    rows, cols = _split_styles(train_styles, "--train-styles"), _split_styles(test_styles, "--test-styles")
    from .plugins import get_generator
    for name in rows + cols:
        get_generator(name, _plugin_dirs(plugins))
    out = out or Path("results") / "matrix"
    check_empty_or_force(out, force=False)
    init = None if from_ == "scratch" else ensure_mnist_model(Path(from_))
    run_matrix(rows, cols, out, init, count=count, train_count=train_count, epochs=epochs,
               strength=strength, workers=workers, plugin_dirs=_plugin_dirs(plugins), on_progress=say)
    typer.echo(str(out / "report.html"))


@app.command()
def quickstart(
    data: Optional[Path] = typer.Option(None, help="MNIST folder or .npz (default: $CAPTCHALAB_MNIST, "
                                        "Keras cache, download)."),
    out: Path = typer.Option(Path("results/quickstart"), help="Output folder (an earlier quickstart there is replaced)."),
):
    """Show the whole toolkit on built-in defaults in a few minutes; writes OUT/report.html."""
    from .mnist import load_mnist
    from .quickstart import run_quickstart
    check_empty_or_force(out, False, ours="report.html")
    mnist = load_mnist(data)
    summary = run_quickstart(mnist, out, say)
    say(f"done in {summary['seconds']:.0f} s; open {out / 'report.html'} in a browser")
    typer.echo(str(out / "report.html"))


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
