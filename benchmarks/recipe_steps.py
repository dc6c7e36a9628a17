"""Steps shared by the recipe benchmarks (real_recipe.py, login_corpus.py, hard_text.py,
pseudo_share.py): run the CLI, split a generated corpus into training and test folders, train a
model once, resuming an interrupted run, so that a benchmark run again goes on where it stopped,
and publish the attack that ends it."""

import csv
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path


def cli(*args) -> float:
    """Run `captchalab ARGS`; the seconds it took, or exit with its error."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "captchalab", *map(str, args)], capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"failed: captchalab {' '.join(map(str, args))}\n{done.stderr}")
    return time.perf_counter() - start


def attack_once(out: Path, *args) -> dict:
    """`captchalab attack ARGS --out OUT` unless OUT holds its report; the report."""
    if not (out / "report.json").is_file():
        cli("attack", *args, "--out", out, "--force")
    return json.loads((out / "report.json").read_text())


def generation_rate(work: Path, style: str, count: int = 1000, *options) -> float:
    """`captchalab generate` of `count` CAPTCHAs of `style` (and `options`) on 2 workers, the
    whole command timed; CAPTCHAs a second (printed too)."""
    seconds = cli("generate", "--style", style, *options, "--count", count, "--workers", 2, "--seed", 5,
                  "--out", work / f"speed-{style}", "--force")  # fmt: skip
    print(f"generate {style}: {count / seconds:.0f} per second on 2 workers (the whole command)", flush=True)
    return count / seconds


def trainings_note(timings: dict) -> str:
    """What a run trained and how long each took, for its results file's note."""
    trained = "; ".join(f"{name} {seconds:.0f} s" for name, seconds in timings.items())
    return f"trainings this run: {trained or 'none (models read back from --work)'}"


def split(folder: Path, train: Path, test: Path, count: int) -> None:
    """The first `count` rows of a dataset into `train`, the rest into `test`."""
    rows = list(csv.reader((folder / "labels.csv").open()))[1:]
    for target, part in ((train, rows[:count]), (test, rows[count:])):
        target.mkdir(parents=True, exist_ok=True)
        for name, *_ in part:
            shutil.copy(folder / name, target / name)
        with (target / "labels.csv").open("w") as f:  # the text alone, as a corpus's labels are
            f.write("filename,text\n" + "".join(f"{n},{t}\n" for n, t, *_ in part))


def train_once(out: Path, timings: dict, label: str, *args) -> None:
    """`captchalab train captcha ARGS --out OUT` unless OUT exists; an interrupted run resumes."""
    if out.is_file():
        return
    resume = ["--resume"] if (out.parent / f".{out.name}.checkpoint" / "state.json").is_file() else []
    timings[label] = cli("train", "captcha", *args, *resume, "--out", out)


def result_line(label: str, r: dict, measures: str) -> str:
    """One attacker's result: its success with the 95% interval, `measures`, and, for an attacker
    that had not converged, that its number is a lower bound and why."""
    low, high = r["captcha_accuracy_ci95"]
    bound = " (a lower bound: " + "; ".join(r["state"]["reasons"]) + ")" if r["state"]["lower_bound"] else ""
    return f"{label}: {r['captcha_accuracy']:.2%} ({low:.1%}-{high:.1%}) {measures}{bound}"


def print_attack(result: dict, timings: dict, what: str) -> None:
    for name, seconds in timings.items():
        print(f"{name}: {seconds:.0f} s")
    for label, r in result["per_attacker"].items():
        print(result_line(label, r, f"of CAPTCHAs read, character accuracy {r['char_accuracy']:.2%} on {what}"))


def publish_attack(report: Path, timings: dict, what: str, name: str, title: str, setting: str) -> Path:
    """The attack in `report` (its report.json) printed, then published as finding `name` (rows:
    the attacker and how it was trained; columns "success" and "characters"): per attacker its
    CAPTCHA success with interval and verdict, its character accuracy; the trainings this run did,
    in the run's note. Writes it, prints its path and returns it."""
    from publish import Finding

    result = json.loads((report / "report.json").read_text())
    print_attack(result, timings, what)
    finding = Finding(name, title, setting, "the attacker and how it was trained", "attacker", ["success", "characters"])  # fmt: skip
    for label, r in result["per_attacker"].items():
        said = finding.add_attack(label, "success", r, "run", digits=2, interval_digits=1)
        finding.add(label, "characters", r["char_accuracy"], "run", verdict=said, digits=2)
    finding.run("run", note=trainings_note(timings))
    path = finding.write()
    print(path)
    return path
