"""The commands of human studies: `humans` (the page), `humans-import`, `humans-simulate` and
`frontier`."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from ..errors import CaptchalabError
from .app import Plugins, app, dirs, say


@app.command()
def humans(
    dataset: Optional[List[Path]] = typer.Option(
        None,
        help="A dataset folder whose CAPTCHAs people solve; repeatable (any kind; blind to which each comes from).",
    ),
    out: Path = typer.Option(
        Path("results/humans"),
        help="The study folder: answers are saved here as they come; "
        "start again with the same --out (and no --dataset) to go on.",
    ),
    port: int = typer.Option(8766, help="Port to listen on."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on (this machine only by default)."),
    per_person: int = typer.Option(20, help="CAPTCHAs each participant solves (after the practice ones)."),
    answers_per_item: int = typer.Option(3, help="Different people each CAPTCHA is shown to (agreement needs 2+)."),
    practice: int = typer.Option(2, help="Practice CAPTCHAs per kind, with feedback, not scored."),
    attention: int = typer.Option(2, help="Attention checks per participant (a plain 3-digit CAPTCHA)."),
    ignore_case: bool = typer.Option(False, help="Score text answers case-insensitively (as attack --ignore-case)."),
    plugins: Plugins = None,
):
    """A local web page on which people solve CAPTCHAs of the given datasets; every answer is saved."""
    from ..humans.pool import StudySettings, open_study
    from ..humans.server import serve
    from ..plugins import load_plugins
    from ..serving import check_port

    load_plugins(dirs(plugins))  # a plugin may define the kind the datasets hold
    if not 1 <= port <= 65535:
        raise CaptchalabError(f"--port must be between 1 and 65535, got {port}")
    check_port(host, port)  # before the study folder is made
    settings = StudySettings(
        answers_per_item=answers_per_item,
        per_person=per_person,
        practice=practice,
        attention=attention,
        ignore_case=ignore_case,
    )
    resumed = (out / "study.json").is_file()
    study = open_study(out, list(dataset or []), settings)
    if resumed:
        kept = study.settings
        say(
            f"going on with the study in {out} as it was made ({kept.per_person} per person, "
            f"{kept.answers_per_item} answers per CAPTCHA); its datasets: {', '.join(study.sources)}"
        )
    if host not in ("127.0.0.1", "localhost", "::1"):
        say(f"warning: listening on {host}: anyone who can reach this machine can take part")
    progress = study.progress()
    say(
        f"{progress['items']} CAPTCHAs x {study.settings.answers_per_item} answers ({progress['main_answers']} so far); "
        f"answers go to {out}/answers"
    )
    say(f"captchalab humans on http://{host}:{port}/ (Ctrl-C to stop)")
    serve(study, host, port)


@app.command("humans-import")
def humans_import(
    answers: Path = typer.Argument(
        ..., help="CSV with worker,dataset,item,answer[,ms][,pointer] (see docs/humans.md)."
    ),
    study: Path = typer.Option(..., help="The study folder the answers belong to."),
    drop_workers: bool = typer.Option(
        False, help="Drop worker ids instead of hashing them (every row then counts as its own participant)."
    ),
    plugins: Plugins = None,
):
    """Import answers collected elsewhere (a crowdsourcing platform) into a study folder."""
    from ..humans.imports import import_answers
    from ..humans.pool import open_study
    from ..plugins import load_plugins

    load_plugins(dirs(plugins))  # a plugin may define the kind the study's datasets hold
    result = import_answers(open_study(study), answers, drop_workers)
    refused = ", ".join(f"{v} {k}" for k, v in result["refused"].items()) or "none"
    say(f"imported {result['imported']} answers; refused: {refused}")


@app.command("humans-simulate")
def humans_simulate(
    url: str = typer.Option("http://127.0.0.1:8766/", help="The study page (`captchalab humans`)."),
    profile: List[str] = typer.Option(
        ...,
        help="FOLDER:ACCURACY:MEDIAN_SECONDS: simulated people answer this "
        "dataset's CAPTCHAs right with ACCURACY, in a log-normal time around "
        "MEDIAN_SECONDS (sigma 0.5); repeatable.",
    ),
    participants: int = typer.Option(20, help="Simulated participants."),
    at_once: Optional[int] = typer.Option(None, help="How many take part simultaneously (default: all)."),
    seed: int = typer.Option(0, help="Seed of the simulated answers."),
):
    """Simulated participants take the page (load tests, worked examples); their answers are marked simulated."""
    from ..humans.simulate import Profile, simulate

    done = simulate(url, [Profile.parse(p) for p in profile], participants, seed, at_once)
    say(
        f"{len(done)} simulated participants sent {sum(d['answers'] for d in done)} answers "
        f"({sum(d['refused'] for d in done)} refused, {sum(d['unrecognised'] for d in done)} images not recognised)"
    )


@app.command()
def frontier(
    humans: List[Path] = typer.Option(..., "--humans", help="A human-study folder; repeatable."),
    results: List[Path] = typer.Option(
        ...,
        "--results",
        help="A study, attack or adversarial report folder with attacker results on the same designs; repeatable.",
    ),
    out: Path = typer.Option(Path("results/frontier"), help="Report folder."),
    min_answers: int = typer.Option(30, help="Human answers a design needs to stand on the front."),
    alternative: List[str] = typer.Option(
        [],
        "--alternative",
        help="DESIGN=DESIGN: two designs one site offers side by side (a visual CAPTCHA and its audio "
        "alternative), each STYLE or STYLE@STRENGTH; repeatable.",
    ),
):
    """Per design: people's success and time beside the best attacker's success, the Pareto front marked."""
    from ..humans.frontier import parse_alternative, write_frontier
    from ..humans.records import check_study_folders

    check_study_folders(humans)
    if min_answers < 1:
        raise CaptchalabError(f"--min-answers must be at least 1, got {min_answers}")
    report = write_frontier(humans, results, out, min_answers, [parse_alternative(a) for a in alternative])
    front = [r["label"] for r in report["rows"] if r["on_front"]]
    say(f"{len(report['rows'])} designs; on the front: {', '.join(front) or 'none (too few answers or results)'}")
    for a in report["alternatives"]:
        if a["attacker_success"] is not None:
            say(f"{' or '.join(a['designs'])}: an attacker passes {a['attacker_success']:.1%}, through {a['weakest']}")
    typer.echo(str(out / "report.html"))
