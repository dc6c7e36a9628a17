"""`captchalab audit`: a design's verdict, on the grid engine."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from ..errors import CaptchalabError
from .app import (
    Address,
    Backend,
    BackendOption,
    DatasetKind,
    Force,
    Humans,
    Jobs,
    Method,
    Params,
    Plugins,
    Resume,
    Strength,
    app,
    cell_reporter,
    fresh_or_resumed,
    dirs,
    make_backend,
    say,
)


class AuditBudget(str, Enum):
    quick = "quick"
    standard = "standard"
    thorough = "thorough"


@app.command()
def audit(
    style: Optional[str] = typer.Option(None, help="The design to audit: a style (built-in or from --plugins)."),
    param: Params = None,
    strength: Strength = 0.5,
    dataset: Optional[Path] = typer.Option(
        None, help="Or a folder of the site's labelled CAPTCHAs (labels.csv): the ladder is nested subsets of it."
    ),
    test: Optional[Path] = typer.Option(
        None, help="With --dataset: test on this folder (default: a seeded split of the dataset, by picture)."
    ),
    kind: DatasetKind = None,
    unlabelled: Optional[Path] = typer.Option(
        None, help="With --dataset: a folder of scraped, unlabelled CAPTCHAs of the design (semi-supervised readers)."
    ),
    budget: AuditBudget = typer.Option(
        AuditBudget.quick,
        help="quick: three label budgets (300 to 3,000), 300 challenges a cell; standard: 100 to 10,000, "
        "1,000 a cell; thorough: to 30,000, 2,000 a cell.",
    ),
    adversarial_against: Optional[Path] = typer.Option(
        None,
        help="With --style: the design perturbed against this differentiable attacker's model; the audit also "
        "fine-tunes that model on the perturbed challenges (the adaptive attacker).",
    ),
    eps: str = typer.Option("8/255", help="With --adversarial-against: L-infinity budget on 0-255 pixels."),
    method: Method = typer.Option(Method.pgd, help="With --adversarial-against: fgsm, pgd or eot."),
    steps: int = typer.Option(10, help="With --adversarial-against: gradient steps (pgd, eot)."),
    out: Optional[Path] = typer.Option(None, help="Verdict folder (default results/audit-<style or dataset>)."),
    resume: Resume = False,
    force: Force = False,
    backend: BackendOption = Backend.local,
    address: Address = None,
    jobs: Jobs = 1,
    humans: Humans = None,
    seed: int = typer.Option(0, help="Seed of the challenges, the split and the trainings."),
    plugins: Plugins = None,
):
    """Audit a CAPTCHA design: every attacker that reads its kind, off the shelf and trained at a
    ladder of label budgets, into one verdict (verdict.md, verdict.html, verdict.json)."""
    from ..audit import audit as run_audit
    from ..generation.adversarial import parse_eps
    from ..humans.records import check_study_folders
    from ..plugins import get_generator

    params = get_generator(style, dirs(plugins)).parse_params(param or []) if style else None
    if param and not style:
        raise CaptchalabError("--param applies to --style, not to --dataset")
    humans = check_study_folders(humans or [])
    name = style or (Path(dataset).resolve().name if dataset else "")
    out = out or Path("results") / f"audit-{name}"
    fresh_or_resumed(out, resume, force)
    verdict = run_audit(
        out,
        style,
        params,
        strength,
        dataset,
        test,
        kind,
        unlabelled,
        budget.value,
        adversarial_against,
        parse_eps(eps),
        method.value,
        steps,
        make_backend(backend, address, jobs),
        resume,
        humans,
        dirs(plugins),
        seed,
        say,
        cell_reporter(),
    )
    say(verdict["headline"])
    typer.echo(str(out / "verdict.html"))
