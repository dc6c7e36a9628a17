"""`captchalab attack`: several attackers on generated CAPTCHAs or a dataset folder, one report."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from ..errors import CaptchalabError
from .app import (
    CHARSET_HELP,
    DatasetKind,
    Force,
    Length,
    Models,
    Params,
    Plugins,
    ReadOnlyAttackers,
    Strength,
    app,
    dirs,
    say,
    split_names,
)


@app.command()
def attack(
    model: Models = None,
    attacker: ReadOnlyAttackers = None,
    style: Optional[str] = typer.Option(None, help="Attack freshly generated CAPTCHAs of this style."),
    styles: Optional[str] = typer.Option(
        None, help="Or several styles, comma-separated: one report with per_style results."
    ),
    dataset: Optional[Path] = typer.Option(None, help="Or attack this dataset folder (labels.csv)."),
    charset: Optional[str] = typer.Option(None, help=CHARSET_HELP + " Default: the first model's set."),
    ignore_case: bool = typer.Option(False, help="Count a character right whatever its case."),
    kind: DatasetKind = None,
    count: int = typer.Option(1000, help="CAPTCHAs to generate (with --style)."),
    length: Length = None,
    seed: int = typer.Option(2, help="Generation seed (use another one than for training)."),
    strength: Strength = 0.5,
    param: Params = None,
    expect: Optional[int] = typer.Option(
        None,
        help="Characters per CAPTCHA told to attackers that use it "
        "(default: the fixed length when all CAPTCHAs share one).",
    ),
    pools: bool = typer.Option(
        True,
        help="For a design drawn from a pool of pictures (tiles=DIR) and an attacker that records the pool "
        "it trained on: report the same pool and new pictures side by side.",
    ),
    workers: int = typer.Option(2, help="Worker processes for decoding and preparing (0: in this process)."),
    out: Optional[Path] = typer.Option(None, help="Report folder (default results/attack-<source>)."),
    force: Force = False,
    plugins: Plugins = None,
):
    """Read CAPTCHAs with one or more attackers; write report.json, .md, .html and plots."""
    from ..attack import attack_many, both_pools, choose_charsets
    from ..attackers.base import load_attackers, model_charsets
    from ..charset import parse_charset
    from ..data.dataset import make_source
    from ..fileio import refuse_existing
    from ..kinds import get_kind
    from ..report import write_attack_report

    generated_set, row_set = choose_charsets(model_charsets(model), parse_charset(charset) if charset else None)
    if styles is not None:
        if style is not None or dataset is not None:
            raise CaptchalabError("give only one of --style, --styles and --dataset")
        names = split_names(styles, "--styles")
        sources = {
            n: make_source(n, None, count, length, seed, strength, param, dirs(plugins), generated_set) for n in names
        }
        label = "-".join(names)
    else:
        sources = {
            style or "dataset": make_source(
                style,
                dataset,
                count,
                length,
                seed,
                strength,
                param,
                dirs(plugins),
                generated_set if dataset is None else row_set,
                ignore_case,
                kind,
            )
        }
        label = style or Path(dataset).resolve().name
    out = out or Path("results") / f"attack-{label}"
    refuse_existing(out, force)  # fail now, not after the attack
    attackers = load_attackers(model, attacker, next(iter(sources.values())).charset, dirs(plugins))
    if pools:
        sources = both_pools(attackers, sources)
    total = sum(len(s) for s in sources.values()) * len(attackers)
    with typer.progressbar(length=total, label="attacking", file=sys.stderr) as bar:
        result, examples = attack_many(attackers, sources, expect, workers, ignore_case, bar.update)
    write_attack_report(out, result, examples, force=force)
    for name, r in result["per_attacker"].items():
        low, high = r["captcha_accuracy_ci95"] or (0, 0)
        say(
            f"{name}: CAPTCHA accuracy {r['captcha_accuracy']:.2%} (95% interval {low:.1%}-{high:.1%})"
            + (" (a lower bound: this attacker had not converged)" if r["state"]["lower_bound"] else "")
            + get_kind(result.get("kind", "text")).summary(r)
            + (
                f", segmentation vs the style's boxes {r['segmentation_box_rate']:.2%}"
                if "segmentation_box_rate" in r
                else ""
            )
            + f", {r['captchas_per_second']:.0f} CAPTCHAs/s"
            + (
                f"; {sum(r['failures'].values())} unanswered: "
                + ", ".join(f"{why} ({n})" for why, n in r["failures"].items())
                if r.get("failures")
                else ""
            )
        )
    typer.echo(str(out / "report.html"))
