"""The worked example of a human study in docs/people.md, end to end through the CLI:

1. `captchalab run studies/human-frontier.toml`: three strengths of `distorted`, each read by
   segment and ctc trained on it until they converge, and ddddocr off the shelf;
2. a dataset of each design (60 CAPTCHAs, other seeds) served by `captchalab humans`;
3. SIMULATED participants (`captchalab humans-simulate`), not people: 36 of them, 15 CAPTCHAs
   each, so every CAPTCHA gets 3 answers. The model, per design: right with probability 0.96 /
   0.85 / 0.55 at strength 0.2 / 0.6 / 1.0, solve times log-normal with medians 4.5 / 7 / 12 s
   (sigma 0.5). These are assumptions for the example, not measurements of people;
4. `captchalab frontier` over both, and the study report again with its frontier section.

    python benchmarks/human_frontier.py [--work results/human-frontier]

It writes results/published/human-frontier-example.json (benchmarks/publish.py says how to publish it).
"""

import argparse
import json
from pathlib import Path

from publish import Finding
from recipe_steps import cli

from captchalab.serving import launch

HERE = Path(__file__).parent
DESIGNS = [(0.2, 0.96, 4.5), (0.6, 0.85, 7.0), (1.0, 0.55, 12.0)]  # strength, simulated accuracy, median seconds


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--work", default="results/human-frontier")
    args = parser.parse_args()
    work = Path(args.work)
    study = work / "study"
    if not (study / "report.json").is_file():
        cli(
            "run",
            HERE.parent / "studies" / "human-frontier.toml",
            "--out",
            study,
            *(["--resume"] if (study / "study.json").is_file() else []),
        )
    folders = []
    for k, (strength, _, _) in enumerate(DESIGNS):
        folder = work / "data" / f"distorted-{strength:g}"
        if not (folder / "labels.csv").is_file():
            cli(
                "generate",
                "--style",
                "distorted",
                "--strength",
                strength,
                "--count",
                60,
                "--seed",
                900 + k,
                "--out",
                folder,
                "--force",
            )
        folders.append(folder)
    humans = work / "humans"
    if not (humans / "answers").is_dir():
        server, url = launch(
            [
                "humans",
                *[a for f in folders for a in ("--dataset", f)],
                "--out",
                humans,
                "--per-person",
                15,
                "--practice",
                1,
                "--answers-per-item",
                3,
            ],
            "api/study",
        )
        try:
            profiles = [f"{f}:{accuracy}:{seconds}" for f, (_, accuracy, seconds) in zip(folders, DESIGNS)]
            cli(
                "humans-simulate",
                "--url",
                url,
                *[a for p in profiles for a in ("--profile", p)],
                "--participants",
                36,
                "--seed",
                5,
            )
        finally:
            server.terminate()
            server.wait(timeout=30)
    cli("frontier", "--humans", humans, "--results", study, "--out", work / "frontier")
    cli("run", HERE.parent / "studies" / "human-frontier.toml", "--out", study, "--resume", "--humans", humans)
    report = json.loads((work / "frontier" / "report.json").read_text())
    print("design | people (SIMULATED) | median s | best attacker | its success | converged | on the front")
    for r in report["rows"]:
        lo, hi = r["human_success_ci95"]
        a_lo, a_hi = r["attacker_success_ci95"] or (0, 0)
        print(
            f"{r['label']} | {r['human_success']:.1%} ({lo:.0%}-{hi:.0%}), {r['human_answers']} answers | "
            f"{r['human_median_seconds']:.1f} | {r['best_attacker']} | {r['attacker_success']:.1%} "
            f"({a_lo:.0%}-{a_hi:.0%}) | {'no' if r['attacker_lower_bound'] else 'yes'} | "
            f"{'yes' if r['on_front'] else 'no'}"
        )
    print(f"plot: {work / 'frontier' / 'frontier.png'}")
    print(publish(report["rows"]))


def publish(rows: list[dict]) -> Path:
    """The frontier as a results file: per design, people's (SIMULATED) success, time and the best
    attacker's success."""
    finding = Finding(
        "human-frontier-example",
        "People and attackers on three strengths of `distorted` (people SIMULATED)",
        "studies/human-frontier.toml and a dataset per design answered by SIMULATED "
        "participants, not people (their accuracy and times are the example's assumptions).",
        "the design, and whether it is on the security-usability front",
        "design",
        ["people (SIMULATED)", "median time", "best attacker"],
    )
    for r in rows:
        row = r["label"] + (" (on the front)" if r["on_front"] else "")
        finding.add(
            row,
            "people (SIMULATED)",
            r["human_success"],
            "run",
            verdict="simulated people",
            interval=r["human_success_ci95"],
            note=f"{r['human_answers']} answers",
        )
        finding.add(row, "median time", round(r["human_median_seconds"], 1), "run", unit="s")
        finding.add(
            row,
            "best attacker",
            r["attacker_success"],
            "run",
            interval=r["attacker_success_ci95"],
            verdict="converged" if not r["attacker_lower_bound"] else "not converged (see the study report)",
            note=r["best_attacker"],
        )
    finding.run("run")
    return finding.write()


if __name__ == "__main__":
    main()
