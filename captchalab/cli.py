"""The `captchalab` command line: a thin layer over the library.

Every user-facing failure becomes one line on stderr and a non-zero exit.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

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
train_app = typer.Typer(help="Train networks: on MNIST, on rendered characters, or an attacker on CAPTCHAs.",
                        no_args_is_help=True, rich_markup_mode=None)
app.add_typer(train_app, name="train")


@app.callback()
def options(verbose: bool = typer.Option(False, "--verbose", help="Show TensorFlow's own start-up and "
                                         "diagnostic lines (hidden by default).")):
    from .runtime import quiet_native_output
    quiet_native_output(verbose)


def progress_level() -> int:
    return 1 if sys.stdout.isatty() else 0  # Keras draws its progress bars on stdout: only on a terminal


def say(message: str) -> None:
    typer.echo(message, err=True)


def epoch_reporter(epochs: Optional[int] = None):
    def report(epoch, record):
        held_out = record["val_accuracy"]
        say(f"epoch {epoch}{f'/{epochs}' if epochs else ''}: " +
            (f"validation accuracy {held_out:.4f}" if held_out is not None else
             f"training accuracy {record['accuracy']:.4f} (nothing held out)"))
    return report


def _plugin_dirs(plugins: Optional[List[Path]]) -> list[str]:
    return [str(p) for p in plugins or []]


PLUGINS_OPTION = typer.Option(None, "--plugins", help="Extra folder of generator and attacker plugins (repeatable).")
PARAM_OPTION = typer.Option(None, "--param", help="Generator parameter as name=value (repeatable).")
HPARAM_OPTION = typer.Option(None, "--hparam", help="Attacker hyper-parameter as name=value (repeatable).")
CHARSET_HELP = "Character set: digits, lower, upper, alnum, ALNUM, or the characters themselves."


def generation_spec(style: str, count: int, length: str, charset: str, seed: int, strength: float,
                    params: Optional[List[str]], plugins: Optional[List[Path]]):
    from .charset import parse_charset
    from .data.dataset import GenerationSpec, parse_length
    from .plugins import get_generator
    dirs = _plugin_dirs(plugins)
    generator = get_generator(style, dirs)
    low, high = parse_length(length)
    spec = GenerationSpec(style=style, count=count, min_length=low, max_length=high,
                          charset=parse_charset(charset), seed=seed, strength=strength,
                          params=generator.parse_params(params or []), plugin_dirs=tuple(dirs))
    spec.check()
    return spec


def make_source(style: Optional[str], dataset: Optional[Path], count: int, length: str, seed: int,
                strength: float, params, plugins, charset: Optional[str], ignore_case: bool = False):
    """A Source from --style or --dataset; `charset` (already parsed) is what a style draws, and
    what a dataset's rows are checked against (None: any)."""
    from .charset import DIGITS
    from .data.dataset import Source, read_dataset
    if (style is None) == (dataset is None):
        raise CaptchalabError("give exactly one of --style and --dataset")
    if dataset is not None:
        if params:
            raise CaptchalabError("--param applies to --style, not to --dataset")
        return Source(dataset=read_dataset(dataset, charset, ignore_case))
    return Source(spec=generation_spec(style, count, length, charset or DIGITS, seed, strength, params, plugins))


@train_app.command("mnist")
def train_mnist_cmd(
    data: Optional[Path] = typer.Option(None, help="MNIST folder (IDX files) or .npz; "
                                        "default: $CAPTCHALAB_MNIST, Keras cache, download."),
    epochs: int = typer.Option(7, help="Training epochs."),
    batch_size: int = typer.Option(128, help="Batch size."),
    seed: int = typer.Option(0, help="Random seed."),
    out: Path = typer.Option(Path("models/mnist.keras"), help="Model file to write (.keras)."),
    resume: bool = typer.Option(False, help="Continue an interrupted run of the same command."),
):
    """Train the deep LeNet network on MNIST and evaluate it on the official test set."""
    from .data.mnist import load_mnist
    from .train import TrainConfig, check_model_path, train_mnist
    config = TrainConfig(epochs=epochs, batch_size=batch_size, seed=seed)
    config.check()
    check_model_path(out)
    mnist = load_mnist(data)
    say(f"MNIST from {mnist.source}: {len(mnist.x_train)} training, {len(mnist.x_test)} test images")
    info = train_mnist(mnist, out, config, resume=resume, verbose=progress_level(), on_epoch=epoch_reporter(epochs))
    say(f"test accuracy {info['test_accuracy']:.4f}; {info['train_images_per_second']:.0f} training images/s; "
        f"{info['wall_seconds']:.0f} s in all")
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
    resume: bool = typer.Option(False, help="Continue an interrupted run of the same command."),
):
    """Train the network on single characters rendered from the bundled fonts (the starting
    weights for letters, as MNIST is for digits)."""
    from .charset import parse_charset
    from .pretrained import chars_path
    from .train import CHARS_TRAINING, TrainConfig, check_model_path, train_chars
    chars = parse_charset(charset)
    config = TrainConfig(**{**CHARS_TRAINING, "epochs": epochs, "batch_size": batch_size, "seed": seed})
    config.check()
    out = check_model_path(out or chars_path(chars))
    info = train_chars(chars, out, config, count, test_count, resume, progress_level(), epoch_reporter(epochs))
    pairs = ", ".join(f"{p['truth']}->{p['guess']} ({p['count']})" for p in info["most_confused"][:5])
    say(f"held-out accuracy {info['test_accuracy']:.4f}; most confused: {pairs or 'none'}; "
        f"{info['wall_seconds']:.0f} s in all")
    typer.echo(str(out))


def starting_model(from_: str, attacker: str, charset: str) -> Optional[Path]:
    """--from: 'scratch', a model file, or 'base' (the attacker's default start, trained if missing)."""
    if from_ == "scratch":
        return None
    if from_ != "base":
        path = Path(from_)
        if not path.is_file():
            raise CaptchalabError(f"--from model {path} does not exist")
        return path
    from .pretrained import ensure_base
    return ensure_base(attacker, charset, say, verbose=progress_level(), on_epoch=epoch_reporter())


@train_app.command("captcha")
def train_captcha_cmd(
    style: Optional[str] = typer.Option(None, help="Generate the training CAPTCHAs with this style."),
    dataset: Optional[Path] = typer.Option(None, help="Or train on this dataset folder (labels.csv)."),
    attacker: str = typer.Option("segment", help="Which attacker to train (see `captchalab attackers`)."),
    charset: Optional[str] = typer.Option(None, help=CHARSET_HELP + " Default: digits for --style, "
                                          "the dataset's own set for --dataset."),
    hparam: Optional[List[str]] = HPARAM_OPTION,
    count: int = typer.Option(3000, help="CAPTCHAs to generate (with --style)."),
    length: str = typer.Option("4", help="Characters per generated CAPTCHA: N or N-M."),
    strength: float = typer.Option(0.5, help="Generator difficulty in [0, 1]."),
    param: Optional[List[str]] = PARAM_OPTION,
    seed: int = typer.Option(1, help="Seed for generation, validation split and training."),
    from_: str = typer.Option("base", "--from", help="Start from this model's weights, 'scratch', or 'base': "
                              "the attacker's default start (MNIST or rendered characters for segment, "
                              "a mixture of built-in styles for ctc), trained first if missing."),
    epochs: Optional[int] = typer.Option(None, help="Training epochs (default: the attacker's)."),
    batch_size: Optional[int] = typer.Option(None, help="Batch size (default: the attacker's)."),
    learning_rate: Optional[float] = typer.Option(None, help="Peak learning rate (default: the attacker's)."),
    workers: int = typer.Option(2, help="Worker processes for rendering and preparing images."),
    out: Optional[Path] = typer.Option(None, help="Model to write (default models/<attacker>-<style or dataset>.keras)."),
    resume: bool = typer.Option(False, help="Continue an interrupted run of the same command."),
    plugins: Optional[List[Path]] = PLUGINS_OPTION,
):
    """Train an attacker on CAPTCHAs (by default starting from weights that already read characters)."""
    from .attackers.base import TrainSettings, get_attacker
    from .charset import parse_charset
    from .train import check_model_path, train_attacker
    cls = get_attacker(attacker, _plugin_dirs(plugins))
    if not cls.trainable:
        raise CaptchalabError(f"attacker {attacker!r} cannot be trained (it is read-only)")
    if epochs is not None and epochs < 1:
        raise CaptchalabError(f"--epochs must be at least 1, got {epochs}")
    chars = parse_charset(charset) if charset else None
    source = make_source(style, dataset, count, length, seed, strength, param, plugins, chars)
    chars = chars or source.charset
    reader = cls(chars, cls(chars).parse_params(hparam or []), info={"plugin_dirs": _plugin_dirs(plugins)})
    name = style or Path(dataset).resolve().name
    out = check_model_path(out or Path("models") / f"{attacker}-{name}.keras")
    init = starting_model(from_, attacker, chars)
    say(f"preparing {len(source)} CAPTCHAs, then training {attacker} from {init or 'scratch'}")
    settings = TrainSettings(epochs, batch_size, learning_rate, seed)
    info = train_attacker(reader, source, out, settings, init, workers, resume, progress_level(),
                          epoch_reporter(epochs), _plugin_dirs(plugins))
    used = (f"{info['captchas_used']} of {info['captchas']} CAPTCHAs cut into the right number of characters; "
            if "captchas_used" in info else f"{info['captchas']} CAPTCHAs; ")
    say(f"{used}{info['unreadable']} unreadable; validation accuracy {info['val_accuracy']:.4f}; "
        f"{info['wall_seconds']:.0f} s")
    typer.echo(str(out))


def load_attackers(models: Optional[List[Path]], names: Optional[List[str]], charset: str, plugins) -> list:
    """Attackers from model files (--model) and read-only attackers by name (--attacker)."""
    from .attackers.base import get_attacker, load_attacker
    dirs = _plugin_dirs(plugins)
    attackers = [load_attacker(m, dirs) for m in models or []]
    for name in names or []:
        cls = get_attacker(name, dirs)
        if cls.trainable:
            raise CaptchalabError(f"attacker {name!r} must be trained first: pass its model with --model")
        attackers.append(cls(charset, info={"plugin_dirs": dirs}))
    if not attackers:
        raise CaptchalabError("give at least one --model or --attacker")
    for a in attackers:
        a.info.setdefault("plugin_dirs", dirs)
    return attackers


def _model_charsets(models: Optional[List[Path]]) -> list[str]:
    from .attackers.base import read_model_info
    for m in models or []:
        if not Path(m).is_file():
            raise CaptchalabError(f"model file {m} does not exist")
    return [read_model_info(Path(m))["charset"] for m in models or []]


def _split_styles(text: str, option: str) -> list[str]:
    names = [s.strip() for s in text.split(",") if s.strip()]
    if not names:
        raise CaptchalabError(f"{option} is empty")
    return names


@app.command()
def attack(
    model: Optional[List[Path]] = typer.Option(None, help="A trained attacker (.keras + .json); repeatable."),
    attacker: Optional[List[str]] = typer.Option(None, help="A read-only attacker by name, e.g. ddddocr; repeatable."),
    style: Optional[str] = typer.Option(None, help="Attack freshly generated CAPTCHAs of this style."),
    styles: Optional[str] = typer.Option(None, help="Or several styles, comma-separated: one report "
                                         "with per_style results."),
    dataset: Optional[Path] = typer.Option(None, help="Or attack this dataset folder (labels.csv)."),
    charset: Optional[str] = typer.Option(None, help=CHARSET_HELP + " Default: the first model's set."),
    ignore_case: bool = typer.Option(False, help="Count a character right whatever its case."),
    count: int = typer.Option(1000, help="CAPTCHAs to generate (with --style)."),
    length: str = typer.Option("4", help="Characters per generated CAPTCHA: N or N-M."),
    seed: int = typer.Option(2, help="Generation seed (use another one than for training)."),
    strength: float = typer.Option(0.5, help="Generator difficulty in [0, 1]."),
    param: Optional[List[str]] = PARAM_OPTION,
    expect: Optional[int] = typer.Option(None, help="Characters per CAPTCHA told to attackers that use it "
                                         "(default: the fixed length when all CAPTCHAs share one)."),
    workers: int = typer.Option(2, help="Worker processes for decoding and preparing (0: in this process)."),
    out: Optional[Path] = typer.Option(None, help="Report folder (default results/attack-<source>)."),
    plugins: Optional[List[Path]] = PLUGINS_OPTION,
):
    """Read CAPTCHAs with one or more attackers; write report.json, .md, .html and plots."""
    from .attack import attack_many
    from .charset import DIGITS, parse_charset
    from .report import write_attack_report
    model_sets = _model_charsets(model)
    # generated CAPTCHAs draw from --charset or the first model's set; a dataset's rows must be
    # readable by every model (read-only attackers read whatever set the CAPTCHAs have)
    generated_set = parse_charset(charset) if charset else (model_sets[0] if model_sets else DIGITS)
    row_set = parse_charset(charset) if charset else \
        ("".join(c for c in model_sets[0] if all(c in s for s in model_sets)) if model_sets else None)
    if styles is not None:
        if style is not None or dataset is not None:
            raise CaptchalabError("give only one of --style, --styles and --dataset")
        names = _split_styles(styles, "--styles")
        sources = {n: make_source(n, None, count, length, seed, strength, param, plugins, generated_set)
                   for n in names}
        label = "-".join(names)
    else:
        sources = {style or "dataset": make_source(style, dataset, count, length, seed, strength, param, plugins,
                                                   generated_set if dataset is None else row_set, ignore_case)}
        label = style or Path(dataset).resolve().name
    out = out or Path("results") / f"attack-{label}"
    check_empty_or_force(out, False, ours="report.json")  # fail now, not after the attack
    attackers = load_attackers(model, attacker, next(iter(sources.values())).charset, plugins)
    total = sum(len(s) for s in sources.values()) * len(attackers)
    with typer.progressbar(length=total, label="attacking", file=sys.stderr) as bar:
        result, examples = attack_many(attackers, sources, expect, workers, ignore_case, bar.update)
    write_attack_report(out, result, examples)
    for name, r in (result.get("per_attacker") or {result["attackers"][0]: result}).items():
        say(f"{name}: CAPTCHA accuracy {r['captcha_accuracy']:.2%}, character accuracy {r['char_accuracy']:.2%}"
            + (f", segmentation vs the generator's boxes {r['segmentation_box_rate']:.2%}"
               if "segmentation_box_rate" in r else "")
            + f", {r['captchas_per_second']:.0f} CAPTCHAs/s")
    typer.echo(str(out / "report.html"))


@app.command()
def generate(
    style: str = typer.Option(..., help="Generator style (see `captchalab generators`)."),
    count: int = typer.Option(1000, help="Number of CAPTCHAs."),
    length: str = typer.Option("4", help="Characters per CAPTCHA: N or a range N-M."),
    charset: str = typer.Option("digits", help=CHARSET_HELP),
    seed: int = typer.Option(0, help="Random seed; the same seed gives byte-identical files."),
    strength: float = typer.Option(0.5, help="Difficulty in [0, 1]."),
    param: Optional[List[str]] = PARAM_OPTION,
    adversarial_against: Optional[Path] = typer.Option(None, help="Perturb every CAPTCHA against this "
                                                       "differentiable attacker's model (ctc, segment)."),
    eps: str = typer.Option("8/255", help="With --adversarial-against: L-infinity budget on 0-255 pixels."),
    method: str = typer.Option("pgd", help="With --adversarial-against: fgsm, pgd, or eot (PGD averaged "
                               "over random blur, resizing and noise)."),
    steps: int = typer.Option(10, help="With --adversarial-against: gradient steps (pgd, eot)."),
    target_text: Optional[str] = typer.Option(None, help="With --adversarial-against: push every CAPTCHA "
                                              "towards this text instead of away from its own."),
    workers: int = typer.Option(1, help="Worker processes."),
    out: Optional[Path] = typer.Option(None, help="Dataset folder (default: data/<style>-s<seed>)."),
    preview: bool = typer.Option(False, help="Also write preview.png, a contact sheet."),
    force: bool = typer.Option(False, help="Replace a non-empty output folder."),
    plugins: Optional[List[Path]] = PLUGINS_OPTION,
):
    """Generate a CAPTCHA dataset folder: PNGs, labels.csv, boxes.json, manifest.json."""
    from .data.dataset import generate_dataset
    spec = generation_spec(style, count, length, charset, seed, strength, param, plugins)
    if workers < 1:
        raise CaptchalabError(f"--workers must be at least 1, got {workers}")
    transform = None
    if adversarial_against is not None:
        from .attackers.base import load_attacker
        from .charset import check_covers
        from .generation.adversarial import PerturbSpec, check_target, dataset_transform, parse_eps
        perturbation = PerturbSpec(method, parse_eps(eps), steps, target_text=target_text, seed=seed)
        perturbation.check()
        target = load_attacker(adversarial_against, _plugin_dirs(plugins))
        check_target(target)
        check_covers(target.charset, spec.charset + (target_text or ""), target.label())
        transform = dataset_transform(target, perturbation, str(adversarial_against))
    out = out or Path("data") / f"{style}-s{seed}"
    with typer.progressbar(length=count, label=f"generating {style}", file=sys.stderr) as bar:
        generate_dataset(spec, out, workers=workers, force=force, preview=16 if preview else 0,
                         on_progress=bar.update, transform=transform)
    typer.echo(str(out))


@app.command()
def generators(plugins: Optional[List[Path]] = PLUGINS_OPTION):
    """List every generator style with its description, characters and parameters."""
    from .charset import charset_name
    from .generation.generator import SOURCES
    from .plugins import load_errors, load_generators
    registry = load_generators(_plugin_dirs(plugins))
    for name in sorted(registry):
        gen = registry[name]
        typer.echo(f"{name}: {gen.description}")
        typer.echo(f"    source: {SOURCES.get(name, '?')}; draws: {charset_name(gen.charset)}")
        for p in gen.params:
            typer.echo(f"    --param {p.describe()}")
    for error in load_errors:
        say(f"warning: broken plugin skipped: {error}")


@app.command()
def attackers(plugins: Optional[List[Path]] = PLUGINS_OPTION):
    """List every attacker with its description and hyper-parameters."""
    from .attackers.base import SOURCES
    from .plugins import load_errors, load_plugins
    registry = load_plugins(_plugin_dirs(plugins))[1]
    for name in sorted(registry):
        cls = registry[name]
        kind = "trainable" if cls.trainable else "read-only"
        typer.echo(f"{name}: {cls.description}")
        typer.echo(f"    source: {SOURCES.get(name, '?')}; {kind}"
                   + ("; differentiable (adversarial CAPTCHAs)" if cls.differentiable else ""))
        for p in cls.params:
            typer.echo(f"    --hparam {p.describe()}")
    for error in load_errors:
        say(f"warning: broken plugin skipped: {error}")


def _visual_input(data: Optional[Path], index: Optional[int], image: Optional[Path],
                  char: Optional[int], index_flag: str, image_flag: str):
    """(28x28 image, label, name) from an MNIST test index or an image file."""
    from .data.images import read_image_or_fail
    from .visualize import prepare_image
    if (index is None) == (image is None):
        raise CaptchalabError(f"give exactly one of {index_flag} and {image_flag}")
    if index is not None:
        from .data.mnist import load_mnist
        mnist = load_mnist(data)
        if not 0 <= index < len(mnist.x_test):
            raise CaptchalabError(f"{index_flag} {index} is out of range: the MNIST test set has "
                                  f"{len(mnist.x_test)} images (0..{len(mnist.x_test) - 1})")
        return mnist.x_test[index], f"mnist #{index} (label {int(mnist.y_test[index])})", f"mnist-{index}"
    picture = read_image_or_fail(image)
    label = image.name + (f" char {char}" if char is not None else "")
    return prepare_image(picture, char), label, image.stem + (f"-char{char}" if char is not None else "")


@app.command()
def visualize(
    model: Path = typer.Option(..., help="A segment attacker or MNIST/characters network (.keras)."),
    mnist_index: Optional[int] = typer.Option(None, help="MNIST test image to show."),
    image: Optional[Path] = typer.Option(None, help="Or an image file: one character or a whole CAPTCHA."),
    char: Optional[int] = typer.Option(None, help="With a CAPTCHA --image: which character (0-based)."),
    compare_index: Optional[int] = typer.Option(None, help="Compare with this MNIST test image."),
    compare_image: Optional[Path] = typer.Option(None, help="Or compare with this image file."),
    data: Optional[Path] = typer.Option(None, help="MNIST location for the index options."),
    out: Optional[Path] = typer.Option(None, help="Output folder (default results/visualize/<name>)."),
):
    """Draw what every layer does for one input (and, optionally, a second one side by side)."""
    from .fileio import atomic_dir
    from .visualize import load_network, render_all
    net, chars = load_network(model)
    first, label, name = _visual_input(data, mnist_index, image, char, "--mnist-index", "--image")
    other = other_label = None
    if compare_index is not None or compare_image is not None:
        other, other_label, other_name = _visual_input(data, compare_index, compare_image, None,
                                                     "--compare-index", "--compare-image")
        name = f"{name}-vs-{other_name}"
    out = out or Path("results") / "visualize" / name
    with atomic_dir(out, ours="index.html") as tmp:
        summary = render_all(net, first, tmp, label, other, other_label, charset=chars)
    say(f"predicted {summary['prediction']!r}"
        + (f" vs {summary['compare_prediction']!r}; most apart at {summary['most_apart']}" if other is not None else "")
        + f"; rendered in {summary['render_seconds']:.1f} s")
    typer.echo(str(out / "index.html"))


BACKEND_OPTION = typer.Option("local", help="Where cells run: local (this machine) or ray (a Ray cluster).")
ADDRESS_OPTION = typer.Option(None, help="With --backend ray: join the cluster at HOST:PORT (default: start one here).")
JOBS_OPTION = typer.Option(1, help="With --backend local: cells run at once, each in its own process.")


def _backend(backend: str, address: Optional[str], jobs: int):
    from . import runtime
    from .study.backends import make_backend
    return make_backend(backend, address, jobs, verbose=runtime.VERBOSE)


def cell_reporter(total: int):
    """One line per finished cell, with the time left at the pace so far."""
    def report(result, progress):
        state = "done" if result.get("status") == "done" else f"failed: {result.get('error', '')[:120]}"
        name = result.get("id") or ", ".join(f"{k}={v}" for k, v in (result.get("coords") or {}).items())
        pace = progress.seconds / progress.ran
        say(f"[{progress.ran}/{total}] {name}: {state}; {pace:.1f} s/cell, about {pace * progress.left:.0f} s left")
    return report


@app.command()
def sweep(
    model: List[Path] = typer.Option(..., help="An attacker (.keras) to test at every step; repeatable."),
    attacker: Optional[List[str]] = typer.Option(None, help="Also a read-only attacker by name (ddddocr)."),
    style: str = typer.Option(..., help="Generator style to sweep."),
    strength: Optional[str] = typer.Option(None, help="Sweep the strength: A:B:N (N evenly spaced values)."),
    param: Optional[str] = typer.Option(None, "--param", help="Or sweep a parameter: name=A:B:N."),
    count: int = typer.Option(1000, help="CAPTCHAs attacked per step."),
    length: int = typer.Option(4, help="Characters per CAPTCHA."),
    charset: Optional[str] = typer.Option(None, help=CHARSET_HELP + " Default: the first model's set."),
    seed: int = typer.Option(100, help="Seed of the first step (step i uses seed + i)."),
    retrain: bool = typer.Option(False, help="Also train a fresh attacker on each step's generator."),
    train_count: int = typer.Option(2000, help="Training CAPTCHAs per retrained attacker."),
    train_epochs: int = typer.Option(4, help="Epochs per retrained attacker."),
    workers: int = typer.Option(2, help="Worker processes for rendering and preparing."),
    out: Optional[Path] = typer.Option(None, help="Report folder (default results/sweep-<style>-<knob>)."),
    resume: bool = typer.Option(False, help="Continue an interrupted sweep in --out."),
    backend: str = BACKEND_OPTION,
    address: Optional[str] = ADDRESS_OPTION,
    jobs: int = JOBS_OPTION,
    plugins: Optional[List[Path]] = PLUGINS_OPTION,
):
    """Attack a generator at N evenly spaced values of its strength or of one parameter, with
    one or more attackers: one curve per attacker on shared axes."""
    import time as _time
    from .charset import parse_charset
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
    sets = _model_charsets(model)
    config = SweepConfig(model=str(model[0]), style=style, knob=knob, values=values, count=count, seed=seed,
                         length=length, retrain=retrain, train_count=train_count, train_epochs=train_epochs,
                         workers=workers, plugin_dirs=tuple(_plugin_dirs(plugins)),
                         models=tuple(str(m) for m in model[1:]), readers=tuple(attacker or ()),
                         charset=parse_charset(charset) if charset else sets[0])
    config.check()
    load_attackers(model, attacker, config.charset, plugins)  # every attacker loads, before any work
    out = out or Path("results") / f"sweep-{style}-{knob}"

    def progress(step, ran, left, elapsed):
        state = (f"CAPTCHA accuracy {step['captcha_accuracy']:.2%}" if step["status"] == "done"
                 else f"failed: {step['error']}")
        say(f"step {step['step'] + 1}/{len(values)} ({knob} = {step['value']}): {state}; "
            f"{elapsed / ran:.1f} s/step, about {elapsed / ran * left:.0f} s left")

    start = _time.perf_counter()
    report = run_sweep(None, config, out, resume=resume, on_step=progress, backend=_backend(backend, address, jobs))
    failed = sum(s["status"] == "failed" for s in report["steps"])
    say(f"{len(report['steps'])} steps ({failed} failed) in {_time.perf_counter() - start:.0f} s")
    typer.echo(str(out / "report.html"))


@app.command()
def matrix(
    train_styles: str = typer.Option(..., help="Styles to train attackers on, comma-separated."),
    test_styles: str = typer.Option(..., help="Styles to attack, comma-separated."),
    attacker: List[str] = typer.Option(["segment"], help="Which attacker to train per style; repeatable "
                                       "(one heat map each, every kind trained on the same CAPTCHAs)."),
    charset: str = typer.Option("digits", help=CHARSET_HELP),
    count: int = typer.Option(500, help="CAPTCHAs attacked per cell."),
    train_count: int = typer.Option(2000, help="Training CAPTCHAs per attacker."),
    epochs: int = typer.Option(4, help="Epochs per attacker."),
    strength: float = typer.Option(0.5, help="Generator strength for every style."),
    from_: str = typer.Option("base", "--from", help="Start attackers from this model, 'scratch', or 'base' "
                              "(the attacker's default start)."),
    workers: int = typer.Option(2, help="Worker processes for rendering and preparing."),
    out: Optional[Path] = typer.Option(None, help="Report folder (default results/matrix)."),
    resume: bool = typer.Option(False, help="Continue an interrupted matrix in --out."),
    backend: str = BACKEND_OPTION,
    address: Optional[str] = ADDRESS_OPTION,
    jobs: int = JOBS_OPTION,
    plugins: Optional[List[Path]] = PLUGINS_OPTION,
):
    """Train one attacker per training style, attack every test style, draw the accuracy heat map."""
    from .attackers.base import get_attacker
    from .charset import parse_charset
    from .plugins import get_generator
    from .sweep import run_matrix
    rows, cols = _split_styles(train_styles, "--train-styles"), _split_styles(test_styles, "--test-styles")
    for name in rows + cols:
        get_generator(name, _plugin_dirs(plugins))
    from .attackers.base import read_model_info
    kinds = list(dict.fromkeys(attacker))
    for name in kinds:
        if not get_attacker(name, _plugin_dirs(plugins)).trainable:
            raise CaptchalabError(f"attacker {name!r} cannot be trained")
    if from_ not in ("base", "scratch") and Path(from_).is_file():
        made_by = read_model_info(Path(from_))["attacker"]
        if any(name != made_by for name in kinds):
            raise CaptchalabError(f"--from {from_} is a {made_by} model; every --attacker must be {made_by}")
    chars = parse_charset(charset)
    out = out or Path("results") / "matrix"
    if not resume:
        check_empty_or_force(out, force=False)
    starts = {name: starting_model(from_, name, chars) for name in kinds}
    run_matrix(rows, cols, out, starts, count=count, train_count=train_count, epochs=epochs, strength=strength,
               workers=workers, plugin_dirs=_plugin_dirs(plugins), on_progress=say, attackers=kinds,
               charset=chars, backend=_backend(backend, address, jobs), resume=resume)
    typer.echo(str(out / "report.html"))


@app.command()
def run(
    study: Path = typer.Argument(..., help="The study file (TOML); see studies/ for examples."),
    out: Optional[Path] = typer.Option(None, help="Results folder (default results/<study name>)."),
    resume: bool = typer.Option(False, help="Continue an interrupted study in --out: only unfinished cells run."),
    backend: str = BACKEND_OPTION,
    address: Optional[str] = ADDRESS_OPTION,
    jobs: int = JOBS_OPTION,
    max_cells: int = typer.Option(10000, help="Refuse a grid with more cells than this."),
):
    """Run a whole study grid (styles x parameters x attackers x training sizes x seeds)."""
    from .study.runner import run_study
    from .study.studyfile import build_cells, load_study
    spec = load_study(study)
    cells = build_cells(spec, max_cells, resolve_base=lambda a, c: starting_model("base", a, c))
    out = out or Path("results") / Path(study).stem
    say(f"{spec.name}: {len(cells)} cells x {len(spec.attackers)} attackers on the {backend} backend")
    report = run_study(spec, cells, out, _backend(backend, address, jobs), resume, cell_reporter(len(cells)))
    failed = sum(r["status"] != "done" for r in report["rows"])
    say(f"{len(report['rows'])} results ({failed} failed)")
    typer.echo(str(out / "report.html"))


@app.command()
def adversarial(
    style: str = typer.Option(..., help="Generator style of the clean CAPTCHAs."),
    against: Path = typer.Option(..., help="The differentiable attacker (model) the perturbations are made against."),
    transfer: Optional[List[Path]] = typer.Option(None, help="Other attackers (models) that read the same "
                                                  "perturbed CAPTCHAs; repeatable. ddddocr joins when installed."),
    defences: str = typer.Option("median3,jpeg75,bits4,blur1", help="Preprocessing defences, comma-separated."),
    eps: str = typer.Option("0,2,4,8,16/255", help="Budgets on 0-255 pixels, comma-separated."),
    method: str = typer.Option("pgd", help="fgsm, pgd or eot."),
    steps: int = typer.Option(10, help="Gradient steps (pgd, eot)."),
    retrain: bool = typer.Option(False, help="Also fine-tune the target on adversarial CAPTCHAs and attack it again."),
    retrain_count: int = typer.Option(2000, help="With --retrain: training CAPTCHAs (half perturbed)."),
    count: int = typer.Option(500, help="Clean CAPTCHAs (the same ones at every eps)."),
    length: str = typer.Option("4", help="Characters per CAPTCHA."),
    charset: Optional[str] = typer.Option(None, help=CHARSET_HELP + " Default: the target's set."),
    strength: float = typer.Option(0.5, help="Generator difficulty in [0, 1]."),
    param: Optional[List[str]] = PARAM_OPTION,
    seed: int = typer.Option(7, help="Seed of the clean CAPTCHAs and of the perturbations."),
    out: Optional[Path] = typer.Option(None, help="Report folder (default results/adversarial-<style>)."),
    plugins: Optional[List[Path]] = PLUGINS_OPTION,
):
    """Adversarial CAPTCHAs: white-box and transfer accuracy, defences, readability and adversarial
    training, per eps, in one report."""
    from .attackers.base import load_attacker
    from .attackers.ddddocr import available
    from .generation.adversarial import check_target, parse_eps_list
    from .study.adversarial import AdversarialConfig, parse_defences, run_adversarial
    from .generation.adversarial import PerturbSpec
    budgets = parse_eps_list(eps)
    PerturbSpec(method, max(budgets), steps).check()
    chosen = parse_defences(defences)
    target_set = _model_charsets([against] + list(transfer or []))[0]
    check_target(load_attacker(against, _plugin_dirs(plugins)))
    spec = generation_spec(style, count, length, charset or target_set, seed, strength, param, plugins)
    out = out or Path("results") / f"adversarial-{style}"
    check_empty_or_force(out, False, ours="report.json")
    readers = ["ddddocr"] if available() else []
    if not readers:
        say("ddddocr is not installed: it is left out of the transfer attackers (pip install 'captchalab[ddddocr]')")
    config = AdversarialConfig(spec, str(against), [str(t) for t in transfer or []], readers, budgets, method,
                               steps, chosen, retrain, retrain_count)
    report = run_adversarial(config, out, say, _plugin_dirs(plugins))
    say(f"done in {report['seconds']:.0f} s")
    typer.echo(str(out / "report.html"))


@app.command()
def explore(
    model: List[Path] = typer.Option(..., help="A model to explore (segment for the layer views; ctc too); repeatable."),
    port: int = typer.Option(8765, help="Port to listen on."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on (this machine only by default)."),
    data: Optional[Path] = typer.Option(None, help="MNIST folder for the random digit button (default: $CAPTCHALAB_MNIST)."),
    plugins: Optional[List[Path]] = PLUGINS_OPTION,
):
    """A local web page: draw a character or drop a CAPTCHA and watch every layer respond."""
    from .explore.server import Explorer, serve
    if not 1 <= port <= 65535:
        raise CaptchalabError(f"--port must be between 1 and 65535, got {port}")
    if host not in ("127.0.0.1", "localhost", "::1"):
        say(f"warning: listening on {host}: anyone who can reach this machine can use the page")
    explorer = Explorer(model, str(data) if data else None, _plugin_dirs(plugins))
    for path, message in explorer.errors.values():
        say(f"warning: {message} (the page says so too)")
    from .explore.server import check_port
    check_port(host, port)
    say(f"captchalab explore on http://{host}:{port}/ (Ctrl-C to stop)")
    serve(explorer, host, port)


@app.command()
def quickstart(
    data: Optional[Path] = typer.Option(None, help="MNIST folder or .npz (default: $CAPTCHALAB_MNIST, "
                                        "Keras cache, download)."),
    out: Path = typer.Option(Path("results/quickstart"), help="Output folder (an earlier quickstart there is replaced)."),
):
    """Show the whole toolkit on built-in defaults in a few minutes; writes OUT/report.html."""
    from .data.mnist import load_mnist
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
