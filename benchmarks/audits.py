"""`captchalab audit` on one built-in design of each kind at strength 0.5 (`--budget quick`), and on
the real corpus ../shared/data/real-digits-4 (its own split; `quick`, then `standard`), and
`distorted` perturbed against a ctc trained on it (8/255, the adaptive step), run the way a
designer would, through the CLI. Each verdict stays in --work (an interrupted audit resumes);
the headlines are published as one finding, with how long each audit took on this machine.

    python benchmarks/audits.py [--work results/audits] [--audits distorted,slider,rotation,grid3,math,real-quick,real-standard,adaptive]

It writes results/published/audits.json (benchmarks/publish.py says how to publish it).
"""

import argparse
import json
import time
from pathlib import Path

from captchalab.audit import best_step
from publish import Finding
from recipe_steps import cli, train_once

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real-digits-4"
AUDITS = {  # name: (the row, the audit's options)
    "distorted": ("`distorted` (text)", ["--style", "distorted", "--budget", "quick"]),
    "slider": ("`slider`", ["--style", "slider", "--budget", "quick"]),
    "rotation": ("`rotation`", ["--style", "rotation", "--budget", "quick"]),
    "grid3": ("`grid3` (image grid)", ["--style", "grid3", "--budget", "quick"]),
    "math": ("`math` (arithmetic)", ["--style", "math", "--budget", "quick"]),
    "real-quick": ("real-digits-4, quick", ["--dataset", REAL, "--budget", "quick"]),
    "real-standard": ("real-digits-4, standard", ["--dataset", REAL, "--budget", "standard"]),
    # the target model's path is added in main: it is trained into --work first
    "adaptive": (
        "`distorted` perturbed against ctc, 8/255",
        ["--style", "distorted", "--budget", "quick", "--eps", "8/255"],
    ),
}
FOLDERS = {"real-quick": "audit-real-digits", "real-standard": "audit-real-digits-standard"}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--work", default="results/audits")
    parser.add_argument("--audits", default=",".join(AUDITS))
    args = parser.parse_args()
    asked = args.audits.split(",")
    if set(asked) - set(AUDITS):
        parser.error(f"--audits: choose among {','.join(AUDITS)}")
    work = Path(args.work)
    finding = Finding("audits", "Audits of one design of each kind, and of a real corpus",
                      "`captchalab audit` with every default: each built-in design at strength 0.5 with `--budget "
                      "quick` (label budgets 300, 1,000 and 3,000; 300 fresh challenges a budget), and "
                      "../shared/data/real-digits-4 on its own split by picture. The best trained reader's success "
                      "(with the labels it took) and the best off-the-shelf one's, each with its Wilson 95% "
                      "interval, and the audit's wall time on this machine.",
                      "the design audited", "measure", ["best trained reader", "best off the shelf", "audit time"])  # fmt: skip
    finding.run("run")
    for name in asked:
        row, options = AUDITS[name]
        out = work / "results" / FOLDERS.get(name, f"audit-{name}")
        if name == "adaptive":  # the designer's own reader of the clean design, which the perturbation is made against
            target = work / "models" / "ctc-distorted.keras"
            train_once(target, {}, "ctc on distorted", "--attacker", "ctc", "--style", "distorted", "--count", 3000)
            options = [*options, "--adversarial-against", target]
        if not (out / "verdict.json").is_file():
            resume = ["--resume"] if (out / "ladder" / "study.json").is_file() else []
            start = time.perf_counter()
            cli("audit", *options, "--out", out, *resume)
            print(f"{name}: {time.perf_counter() - start:.0f} s", flush=True)
        verdict = json.loads((out / "verdict.json").read_text())
        print(f"{name}: {verdict['headline']}", flush=True)
        for column, trained in (("best trained reader", True), ("best off the shelf", False)):
            found = best_step(verdict["attackers"], trained)
            if found is None:
                continue
            attacker, step = found
            said = (
                ("converged" if step["converged"] else "not converged: a lower bound") if trained else "off the shelf"
            )
            note = f"{attacker}, {step['budget']:,} labels" if trained else attacker
            finding.add(row, column, step["success"], "run", interval=step["interval"], verdict=said, note=note)
        finding.add(row, "audit time", verdict["machine"]["seconds"], "run", unit="s")
    print(finding.write())


if __name__ == "__main__":
    main()
