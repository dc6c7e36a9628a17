"""Runs benchmarks/attackers-table.toml through `captchalab run` (resumable: run it again with
the same --out to continue) and prints the table as Markdown: CAPTCHA accuracy per style,
strength and attacker.

    python benchmarks/attackers_table.py [--out results/attackers-table] [--backend local]
"""
import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="results/attackers-table")
    parser.add_argument("--backend", default="local")
    args = parser.parse_args()
    out = Path(args.out)
    command = [sys.executable, "-m", "captchalab", "run", str(HERE / "attackers-table.toml"), "--out", str(out),
               "--backend", args.backend]
    if (out / "study.json").is_file():
        command.append("--resume")
    subprocess.run(command, check=True)
    rows = json.loads((out / "cells.json").read_text())
    attackers = list(dict.fromkeys(r["attacker"] for r in rows))
    print("| style | strength | " + " | ".join(attackers) + " |")
    print("|---|---|" + "---|" * len(attackers))
    cells = {}
    for r in rows:
        cells.setdefault((r["style"], r["strength"]), {})[r["attacker"]] = r
    for (style, strength), per in cells.items():
        values = [f"{per[a]['captcha_accuracy']:.1%}" if per.get(a, {}).get("status") == "done" else "failed"
                  for a in attackers]
        print(f"| {style} | {strength} | " + " | ".join(values) + " |")


if __name__ == "__main__":
    main()
