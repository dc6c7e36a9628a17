"""The grid commands: `sweep`, `matrix` and `run` (a study file), on one engine."""

from __future__ import annotations

import time
from pathlib import Path
from typing import List, Optional

import typer

from ..errors import CaptchalabError
from .app import (
    CHARSET_HELP,
    Address,
    BackendOption,
    Backend,
    Force,
    Humans,
    Jobs,
    Models,
    Plugins,
    ReadOnlyAttackers,
    Resume,
    Workers,
    app,
    cell_reporter,
    fresh_or_resumed,
    dirs,
    make_backend,
    say,
    split_names,
)


@app.command()
def sweep(
    model: Models = None,
    attacker: ReadOnlyAttackers = None,
    style: str = typer.Option(..., help="Style to sweep."),
    strength: Optional[str] = typer.Option(None, help="Sweep the strength: A:B:N (N evenly spaced values)."),
    param: Optional[str] = typer.Option(None, "--param", help="Or sweep a parameter: name=A:B:N."),
    count: int = typer.Option(1000, help="CAPTCHAs attacked per step."),
    length: int = typer.Option(4, help="Characters per CAPTCHA."),
    charset: Optional[str] = typer.Option(None, help=CHARSET_HELP + " Default: the first model's set."),
    seed: int = typer.Option(100, help="Seed of the first step (step i uses seed + i)."),
    retrain: bool = typer.Option(False, help="Also train a fresh attacker on each step's style."),
    train_count: int = typer.Option(
        3000, help="Training CAPTCHAs per retrained attacker (3,000 hold out the 300 a convergence decision needs)."
    ),
    train_epochs: Optional[int] = typer.Option(
        None, help="At most this many epochs per retrained attacker (default: until it converges)."
    ),
    workers: Workers = 2,
    out: Optional[Path] = typer.Option(None, help="Report folder (default results/sweep-<style>-<knob>)."),
    resume: Resume = False,
    force: Force = False,
    backend: BackendOption = Backend.local,
    address: Address = None,
    jobs: Jobs = 1,
    plugins: Plugins = None,
):
    """Attack a style at N evenly spaced values of its strength or of one parameter, with one or
    more attackers: one curve per attacker on shared axes."""
    from ..attackers.base import load_attackers, model_charsets
    from ..charset import DIGITS, parse_charset
    from ..sweep import SweepConfig, parse_knob, run_sweep

    knob, values = parse_knob(style, strength, param, dirs(plugins))
    model = model or []
    config = SweepConfig(
        model=str(model[0]) if model else None,
        style=style,
        knob=knob,
        values=values,
        count=count,
        seed=seed,
        length=length,
        retrain=retrain,
        train_count=train_count,
        train_epochs=train_epochs,
        workers=workers,
        plugin_dirs=tuple(dirs(plugins)),
        models=tuple(str(m) for m in model[1:]),
        readers=tuple(attacker or ()),
        charset=parse_charset(charset) if charset else (model_charsets(model) or [DIGITS])[0],
    )
    config.check()
    load_attackers(model, attacker, config.charset, dirs(plugins))  # every attacker loads, before any work
    out = out or Path("results") / f"sweep-{style}-{knob}"
    fresh_or_resumed(out, resume, force)

    def progress(step, ran, left, elapsed):
        first = next(iter(step.get("per_attacker", {}).values()), {})
        bound = (
            " (a lower bound: the attacker had not converged)" if (first.get("state") or {}).get("lower_bound") else ""
        )
        state = (
            f"CAPTCHA accuracy {step['captcha_accuracy']:.2%}{bound}"
            if step["status"] == "done"
            else f"failed: {step['error']}"
        )
        say(
            f"step {step['step'] + 1}/{len(values)} ({knob} = {step['value']}): {state}; "
            f"{elapsed / ran:.1f} s/step, about {elapsed / ran * left:.0f} s left"
        )

    start = time.perf_counter()
    report = run_sweep(None, config, out, resume=resume, on_step=progress, backend=make_backend(backend, address, jobs))
    failed = sum(s["status"] == "failed" for s in report["steps"])
    say(f"{len(report['steps'])} steps ({failed} failed) in {time.perf_counter() - start:.0f} s")
    typer.echo(str(out / "report.html"))


@app.command()
def matrix(
    train_styles: str = typer.Option(
        ...,
        help="Styles to train attackers on, comma-separated; a style may "
        "set parameters, STYLE:name=value:name=value (grid3:art=noto).",
    ),
    test_styles: str = typer.Option(..., help="Styles to attack, comma-separated, the same way."),
    attacker: List[str] = typer.Option(
        ["segment"],
        help="Which attacker to train per style: NAME or "
        "NAME:name=value,...; repeatable (one heat map each, every kind "
        "trained on the same CAPTCHAs).",
    ),
    charset: str = typer.Option("digits", help=CHARSET_HELP),
    count: int = typer.Option(500, help="CAPTCHAs attacked per cell."),
    train_count: int = typer.Option(
        3000, help="Training CAPTCHAs per attacker (3,000 hold out the 300 a convergence decision needs)."
    ),
    epochs: Optional[int] = typer.Option(
        None, help="At most this many epochs per attacker (default: until it converges)."
    ),
    strength: float = typer.Option(0.5, help="Style strength for every style."),
    from_: str = typer.Option(
        "base", "--from", help="Start attackers from this model, 'scratch', or 'base' (the attacker's declared start)."
    ),
    workers: Workers = 2,
    out: Optional[Path] = typer.Option(None, help="Report folder (default results/matrix)."),
    resume: Resume = False,
    force: Force = False,
    backend: BackendOption = Backend.local,
    address: Address = None,
    jobs: Jobs = 1,
    plugins: Plugins = None,
):
    """Train one attacker per training style, attack every test style, draw the accuracy heat map
    (a style may carry parameters, so any parameter can be crossed: grid3:art=noto,grid3:art=fluent)."""
    from ..attackers.base import make_attacker
    from ..charset import parse_charset
    from ..pretrained import check_start, starting_model
    from ..matrix import MatrixConfig, parse_design, run_matrix

    rows, cols = split_names(train_styles, "--train-styles"), split_names(test_styles, "--test-styles")
    for design in rows + cols:
        parse_design(design, dirs(plugins))
    chars = parse_charset(charset)
    specs = list(dict.fromkeys(attacker))
    made = {spec: make_attacker(spec, chars, dirs(plugins)) for spec in specs}
    for spec, a in made.items():
        if not a.trainable:
            raise CaptchalabError(f"attacker {a.name!r} cannot be trained")
    check_start(from_, [a.name for a in made.values()])
    out = out or Path("results") / "matrix"
    fresh_or_resumed(out, resume, force)
    starts = {
        spec: starting_model(from_, a.name, chars, say, plugin_dirs=dirs(plugins), hparams=a.hparams)
        for spec, a in made.items()
    }
    config = MatrixConfig(
        rows,
        cols,
        specs,
        starts,
        count=count,
        train_count=train_count,
        epochs=epochs,
        strength=strength,
        workers=workers,
        charset=chars,
        plugin_dirs=tuple(dirs(plugins)),
    )
    run_matrix(config, out, resume, on_progress=say, backend=make_backend(backend, address, jobs))
    typer.echo(str(out / "report.html"))


@app.command()
def run(
    study: Path = typer.Argument(
        ..., help="The study file (TOML): docs/studies.md lists every key, studies/ holds examples."
    ),
    out: Optional[Path] = typer.Option(None, help="Results folder (default results/<study name>)."),
    resume: bool = typer.Option(False, help="Continue an interrupted study in --out: only unfinished cells run."),
    force: Force = False,
    backend: BackendOption = Backend.local,
    address: Address = None,
    jobs: Jobs = 1,
    max_cells: int = typer.Option(10000, help="Refuse a grid with more cells than this."),
    humans: Humans = None,
    plugins: Plugins = None,
):
    """Run a whole study grid (styles x parameters x attackers x training sizes x seeds)."""
    from ..pretrained import starting_model
    from ..study.runner import run_study
    from ..study.expand import build_cells
    from ..study.studyfile import load_study
    from ..humans.records import check_study_folders

    humans = check_study_folders(humans or [])
    spec = load_study(study, dirs(plugins))
    cells = build_cells(
        spec,
        max_cells,
        resolve_base=lambda a, c, h: starting_model("base", a, c, say, plugin_dirs=spec.plugin_dirs, hparams=h),
    )
    out = out or Path("results") / Path(study).stem
    fresh_or_resumed(out, resume, force)
    say(f"{spec.name}: {len(cells)} cells x {len(spec.attackers)} attackers on the {backend.value} backend")
    report = run_study(
        spec, cells, out, make_backend(backend, address, jobs), resume, cell_reporter(len(cells)), humans=humans
    )
    failed = sum(r["status"] != "done" for r in report["rows"])
    say(f"{len(report['rows'])} results ({failed} failed)")
    typer.echo(str(out / "report.html"))
