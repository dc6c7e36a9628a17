"""Runs benchmarks/attackers-table.toml through `captchalab run`, one study per style (each
resumable, so a session that ends keeps every style it finished; run it again with the same
--out to continue) and prints the table as Markdown: CAPTCHA accuracy with its 95% interval per
style, strength and attacker, "(lower bound)" where the attacker had not converged.

    python benchmarks/attackers_table.py [--out results/attackers-table] [--styles noisy,clean]

It writes results/published/attackers-by-style.json (benchmarks/publish.py says how to publish it).
"""

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

from publish import Finding

HERE = Path(__file__).parent
STUDY = HERE / "attackers-table.toml"


def styles_of(text: str) -> list[str]:
    return json.loads(re.search(r"^style = (\[.*\])$", text, re.M).group(1))


def style_study(text: str, style: str) -> str:
    """The table's study restricted to one style (same seed, sizes and attackers)."""
    text = re.sub(r"^style = \[.*\]$", f'style = ["{style}"]', text, count=1, flags=re.M)
    return re.sub(r'^name = "(.*)"$', rf'name = "\1: {style}"', text, count=1, flags=re.M)


def run_style(text: str, style: str, out: Path, backend: str) -> None:
    folder = out / style
    folder.mkdir(parents=True, exist_ok=True)
    study = out / f"{style}.toml"
    study.write_text(style_study(text, style))
    command = [
        sys.executable,
        "-m",
        "captchalab",
        "run",
        str(study),
        "--out",
        str(folder / "study"),
        "--backend",
        backend,
    ]
    if (folder / "study" / "study.json").is_file():
        command.append("--resume")
    subprocess.run(command, check=True)


def cell_text(row: dict) -> str:
    if row.get("status") != "done":
        return row.get("status", "failed")
    low, high = row.get("ci95_low"), row.get("ci95_high")
    text = f"{row['captcha_accuracy']:.1%}"
    if low is not None:
        text += f" ({low:.1%}-{high:.1%})"
    return text + (" (lower bound)" if row.get("lower_bound") else "")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="results/attackers-table")
    parser.add_argument("--backend", default="local")
    parser.add_argument("--styles", default="", help="comma-separated; default every style of the table, in order")
    args = parser.parse_args()
    out, text = Path(args.out), STUDY.read_text()
    every = styles_of(text)
    chosen = [s for s in args.styles.split(",") if s] or every
    unknown = [s for s in chosen if s not in every]
    if unknown:
        sys.exit(f"--styles: {', '.join(unknown)} not in the table ({', '.join(every)})")
    for style in chosen:
        run_style(text, style, out, args.backend)
    rows = []
    for style in every:  # every style finished so far, this run or an earlier one
        cells = out / style / "study" / "cells.json"
        if cells.is_file():
            rows += json.loads(cells.read_text())
    attackers = list(dict.fromkeys(r["attacker"] for r in rows))
    print("| style | strength | " + " | ".join(attackers) + " |")
    print("|---|---|" + "---|" * len(attackers))
    table = {}
    for r in rows:
        table.setdefault((r["style"], r["strength"]), {})[r["attacker"]] = r
    for (style, strength), per in table.items():
        print(f"| {style} | {strength} | " + " | ".join(cell_text(per.get(a, {})) for a in attackers) + " |")
    print(publish(rows, chosen))


def publish(rows: list[dict], ran: list[str]) -> Path:
    """The table as a results file: a row per style and attacker, a column per strength. Styles
    read back from an earlier run are credited to this run too: its note says which ran now."""
    strengths = list(dict.fromkeys(str(r["strength"]) for r in rows))
    finding = Finding(
        "attackers-by-style",
        "Which attacker breaks which text style",
        "CAPTCHA success on fresh four-digit CAPTCHAs per cell (benchmarks/attackers-table.toml): each "
        "trainable attacker trained on the same CAPTCHAs of that cell's style and strength until it "
        "converged (or was flagged), read-only ones off the shelf; Wilson 95% intervals.",
        "the style and the attacker reading it",
        "style: attacker",
        strengths,
    )
    run = finding.run("table", note="styles run in this call: " + ", ".join(ran))
    for r in rows:
        if r.get("status") == "done":
            finding.add_attack(f"{r['style']}: {r['attacker']}", r["strength"], r, run)
    return finding.write()


if __name__ == "__main__":
    main()
