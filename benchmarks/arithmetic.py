"""Arithmetic CAPTCHAs, measured the way a researcher would run them, through the CLI:

1. `generation`: `math` and `distorted` generated on 2 workers in the same run (CAPTCHAs a second);
2. `values`: ctc from its base (the digits base, its output layer extended by the operators) trained
   on 10,000 `math` CAPTCHAs at strength 0.5 until it converges, then it and ddddocr attack 1,000
   fresh ones (seed 2), scored by value, with expression accuracy beside;
3. `sweep`: both over the strength, 0 to 1 in five steps, 500 fresh CAPTCHAs a step;
4. `site`: a stand-in for a real site's corpus (plugins/site_math.py: 1,250 CAPTCHAs of 155x30,
   two framed, turned operands in two inks and a plus sign over grey curves, labelled with the
   expression alone, `filename,text`, as the real one is; 1,000 to train, 250 to test, read with
   `--kind arithmetic`): ctc pre-trained on 10,000 `math` CAPTCHAs set to resemble it, then
   fine-tuned on the 1,000; beside the pre-trained reader alone and ddddocr;
5. `scratch`: ctc from scratch on the 1,000 alone (every default: the small-set rule decides).

Models and reports stay in --work, so a run again goes on where it stopped.

    python benchmarks/arithmetic.py [--work results/arithmetic] [--parts generation,values,sweep,site,scratch]

It writes results/published/arithmetic*.json (benchmarks/publish.py says how to publish them).
"""

import argparse
import json
import time
from pathlib import Path

from publish import Finding
from recipe_steps import attack_once, cli, generation_rate, split, train_once, trainings_note

PLUGINS = Path(__file__).parent / "plugins"
SET = "0123456789+-×÷=?"  # every character `math` draws at any strength: one reader sweeps them all
RESEMBLING = ["--param", "operators=+", "--param", "equals=false", "--param", "boxes=1", "--param", "colours=2",
              "--param", "curves=5", "--param", "lines=0", "--param", "texture=40", "--param", "rotate=25",
              "--param", "lookalike=0", "--param", "height=40", "--param", "font_size=28"]  # fmt: skip
PARTS = ("generation", "values", "sweep", "site", "scratch")


def show(result: dict, what: str) -> None:
    for label, r in result["per_attacker"].items():
        low, high = r["captcha_accuracy_ci95"]
        bound = " (a lower bound: " + "; ".join(r["state"]["reasons"]) + ")" if r["state"]["lower_bound"] else ""
        print(f"{label}: values {r['captcha_accuracy']:.2%} ({low:.1%}-{high:.1%}), expressions "
              f"{r['expression_accuracy']:.2%}, unparsable {r['unparsable']} on {what}{bound}", flush=True)  # fmt: skip


def add_rows(finding: Finding, result: dict, names: dict) -> None:
    for label, r in result["per_attacker"].items():
        row = names.get(label, label)
        said = finding.add_attack(row, "value", r, "run", digits=2, interval_digits=1)
        finding.add(row, "expression", r["expression_accuracy"], "run", verdict=said, digits=2)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--work", default="results/arithmetic")
    parser.add_argument("--parts", default=",".join(PARTS))
    args = parser.parse_args()
    parts = args.parts.split(",")
    if set(parts) - set(PARTS):
        parser.error(f"--parts: choose among {','.join(PARTS)}")
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    timings, start = {}, time.perf_counter()

    if "generation" in parts:
        speed = Finding("math-generation", "Generating arithmetic CAPTCHAs", "`captchalab generate` of 2,000 "
                        "CAPTCHAs on 2 workers, the whole command timed, `math` beside `distorted` in the same run.",
                        "the style", "measure", ["CAPTCHAs a second"])  # fmt: skip
        for style in ("math", "distorted"):
            speed.add(style, "CAPTCHAs a second", round(generation_rate(work, style, 2000)), "run", unit="/s")
        speed.run("run")
        print(speed.write())

    ctc = work / "ctc-math.keras"
    if {"values", "sweep"} & set(parts):
        train_once(ctc, timings, "ctc on math", "--attacker", "ctc", "--style", "math", "--strength", 0.5,
                   "--charset", SET, "--count", 10000)  # fmt: skip
    if "values" in parts:
        result = attack_once(work / "attack-0.5", "--model", ctc, "--attacker", "ddddocr", "--style", "math",
                        "--strength", 0.5, "--count", 1000, "--seed", 2)  # fmt: skip
        show(result, "1,000 fresh math CAPTCHAs at strength 0.5")
        finding = Finding("arithmetic", "Arithmetic CAPTCHAs at strength 0.5: values read",
                          "1,000 fresh `math` CAPTCHAs at strength 0.5 (docs/arithmetic.md defines it), scored by "
                          "value with its Wilson 95% interval; the expression read exactly beside it.",
                          "the attacker and how it was trained", "measure", ["value", "expression"])  # fmt: skip
        add_rows(
            finding, result, {"ctc-math (ctc)": "ctc from its base (digits, output extended), 10,000 at strength 0.5"}
        )
        finding.run("run", note=trainings_note(timings))
        print(finding.write())

    if "sweep" in parts:
        sweep = work / "sweep"
        if not (sweep / "report.json").is_file():
            cli("sweep", "--model", ctc, "--attacker", "ddddocr", "--style", "math", "--strength", "0:1:5",
                "--count", 500, "--out", sweep, "--force")  # fmt: skip
        report = json.loads((sweep / "report.json").read_text())
        finding = Finding("arithmetic-strength", "Arithmetic CAPTCHAs over strength",
                          "The ctc of [arithmetic](arithmetic.md) (trained at strength 0.5) and ddddocr on 500 "
                          "fresh `math` CAPTCHAs at each strength, scored by value.",
                          "the strength", "attacker", ["ctc", "ddddocr"])  # fmt: skip
        for step in report["steps"]:
            for label, r in step["per_attacker"].items():
                column = "ctc" if "ctc" in label else label
                finding.add_attack(f"strength {step['value']}", column, r, "run", digits=2, interval_digits=1)
                print(f"strength {step['value']}: {label} {r['captcha_accuracy']:.1%}", flush=True)
        finding.run("run", note=str(sweep))
        print(finding.write())

    if {"site", "scratch"} & set(parts):
        if not (work / "site-test").is_dir():
            cli("generate", "--style", "site_math", "--plugins", PLUGINS, "--count", 1250, "--seed", 91,
                "--workers", 2, "--out", work / "site", "--force")  # fmt: skip
            split(work / "site", work / "site-train", work / "site-test", 1000)  # labels: filename,text
        real = ["--dataset", work / "site-train", "--kind", "arithmetic"]
        test = ["--dataset", work / "site-test", "--kind", "arithmetic"]
        models, names = [], {}
        if "site" in parts:
            pre = work / "ctc-resembling.keras"
            train_once(pre, timings, "ctc pre-trained", "--attacker", "ctc", "--style", "math", "--strength", 0.5,
                       *RESEMBLING, "--count", 10000)  # fmt: skip
            tuned = work / "ctc-site.keras"
            train_once(tuned, timings, "ctc fine-tuned", "--attacker", "ctc", *real, "--from", pre)
            models += [tuned, pre]
            names.update({"ctc-site (ctc)": "ctc pre-trained on resembling math, fine-tuned on the 1,000",
                          "ctc-resembling (ctc)": "ctc pre-trained on resembling math only"})  # fmt: skip
        if "scratch" in parts:
            scratch = work / "ctc-scratch.keras"
            train_once(scratch, timings, "ctc from scratch", "--attacker", "ctc", *real, "--from", "scratch")
            models.append(scratch)
            names["ctc-scratch (ctc)"] = "ctc from scratch on the 1,000, every default"
        result = attack_once(work / ("attack-" + "-".join(p for p in ("site", "scratch") if p in parts)),
                        *[a for m in models for a in ("--model", m)], "--attacker", "ddddocr", *test)  # fmt: skip
        show(result, "the 250 held-out CAPTCHAs of the site stand-in")
        finding = Finding("arithmetic-site", "A real site's arithmetic CAPTCHAs, stood in for",
                          "benchmarks/plugins/site_math.py (155x30 JPEGs, two framed, turned operands in two inks "
                          "and a plus sign over grey curves; labels the expression alone): 1,000 to train, 250 to "
                          "test, scored by value with the Wilson 95% interval.",
                          "the attacker and how it was trained", "measure", ["value", "expression"])  # fmt: skip
        add_rows(finding, result, names)
        finding.run("run", note=trainings_note(timings))
        print(finding.write())
    print(f"{time.perf_counter() - start:.0f} s in all", flush=True)


if __name__ == "__main__":
    main()
