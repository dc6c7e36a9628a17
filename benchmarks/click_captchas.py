"""Click-in-order CAPTCHAs, measured the way a researcher would run them, through the CLI:

1. `generation`: `iconclick`, `textclick` and `distorted` generated on 2 workers in the same run
   (challenges a second, 2,000 each, the whole command timed);
2. `attack`: clicknet trained on each style at strength 0.5 (6,000 challenges, then from that
   model on 12,000 others, and for icons once more on new challenges every epoch: `train_steps`),
   then it and ddddocr-click (off the shelf) attack 1,000 fresh ones (seed 10);
   `unseen` (with `attack`): a clicknet trained the same way on three art styles attacks icons in
   the fourth (fluent), which it never saw;
3. `sweep`: both attackers over each style's strength, 0 to 1 in five steps, 300 a step.

Models and reports stay in --work, so a run again goes on where it stopped.

    python benchmarks/click_captchas.py [--work results/click] [--parts generation,attack,unseen,sweep] [--styles iconclick,textclick]

It writes results/published/click*.json (benchmarks/publish.py says how to publish them).
"""

import argparse
import json
import time
from pathlib import Path

from publish import Finding
from recipe_steps import attack_once, cli, generation_rate, train_once, trainings_note

PARTS = ("generation", "attack", "unseen", "sweep")
STYLES = ("iconclick", "textclick")
# the trainings draw with seeds 0, 1 and 2 (and fresh ones from the run's generator); the attacks
# and sweeps with seeds no training used (a sweep's step k draws with its seed + k)
TEST_SEED = 10
SEEN_ARTS = "noto+twemoji+openmoji"  # the unseen-art reader's training art; it is tested on fluent


def show(result: dict, what: str) -> None:
    for label, r in result["per_attacker"].items():
        low, high = r["captcha_accuracy_ci95"]
        bound = " (a lower bound: " + "; ".join(r["state"]["reasons"]) + ")" if r["state"]["lower_bound"] else ""
        print(f"{label}: {r['captcha_accuracy']:.2%} ({low:.1%}-{high:.1%}) in order, target hits "
              f"{r['target_hit_rate']:.1%}, order errors {r['order_errors']}, misses {r['misses']}, "
              f"{r['captchas_per_second']}/s on {what}{bound}", flush=True)  # fmt: skip


def train_steps(work: Path, out: Path, timings: dict, style: str, *params) -> None:
    """clicknet on `style` at 0.5: 6,000 challenges (seed 0) for 150,000 examples, then from that
    model on 12,000 others (seed 1) for 300,000 more (one run on 2 cores stops while the reader
    still improves); for `iconclick`, a third run from that model on new challenges every epoch
    (6,000 an epoch, seed 2, 150,000 examples): after two it read 99.6% of its own challenges and
    about 80% of fresh ones."""
    first, second = work / f"{out.stem}-first.keras", work / f"{out.stem}-second.keras"
    common = ["--attacker", "clicknet", "--style", style, "--strength", 0.5, *params, "--workers", 2]
    train_once(first, timings, f"clicknet on {style}, first", *common, "--count", 6000, "--budget", 150000)
    last = out if style != "iconclick" else second
    train_once(last, timings, f"clicknet on {style}, then", *common, "--count", 12000, "--seed", 1,
               "--from", first, "--budget", 300000)  # fmt: skip
    if last != out:
        train_once(out, timings, f"clicknet on {style}, on fresh challenges", *common, "--count", 6000, "--fresh",
                   "--seed", 2, "--from", second, "--budget", 150000)  # fmt: skip


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--work", default="results/click")
    parser.add_argument("--parts", default=",".join(PARTS))
    parser.add_argument("--styles", default=",".join(STYLES))
    args = parser.parse_args()
    parts, styles = args.parts.split(","), args.styles.split(",")
    if set(parts) - set(PARTS) or set(styles) - set(STYLES):
        parser.error(f"--parts: choose among {','.join(PARTS)}; --styles among {','.join(STYLES)}")
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    timings, start = {}, time.perf_counter()

    if "generation" in parts:
        speed = Finding("click-generation", "Generating click-in-order CAPTCHAs", "`captchalab generate` of 2,000 "
                        "challenges on 2 workers at strength 0.5, the whole command timed, the click styles beside "
                        "`distorted` text in the same run.", "the style", "measure", ["challenges a second"])  # fmt: skip
        for style in (*STYLES, "distorted"):
            speed.add(style, "challenges a second", round(generation_rate(work, style, 2000)), "run", unit="/s")
        speed.run("run")
        print(speed.write())

    models = {}
    for style in styles:
        models[style] = work / f"clicknet-{style}.keras"
        if {"attack", "sweep"} & set(parts):
            train_steps(work, models[style], timings, style)

    if "attack" in parts:
        finding = Finding("click", "Click-in-order CAPTCHAs at strength 0.5",
                          "1,000 fresh challenges of each style at strength 0.5 (docs/click.md defines it): every "
                          "target clicked in order, single attempt, with its Wilson 95% interval; the share of "
                          "targets hit beside it. clicknet trained on challenges of the style at strength 0.5 "
                          "(6,000, then from that model on 12,000 others, and for icons once more on new "
                          "challenges every epoch); ddddocr-click off the shelf.",
                          "the style and attacker", "measure", ["in order", "targets hit"])  # fmt: skip
        for style in styles:
            result = attack_once(work / f"attack-{style}", "--model", models[style], "--attacker", "ddddocr-click",
                            "--style", style, "--strength", 0.5, "--count", 1000, "--seed", TEST_SEED)  # fmt: skip
            show(result, f"1,000 fresh {style} at strength 0.5")
            for label, r in result["per_attacker"].items():
                row = f"`{style}`, " + ("clicknet" if "clicknet" in label else label)
                said = finding.add_attack(row, "in order", r, "run", digits=1, interval_digits=1)
                finding.add(row, "targets hit", r["target_hit_rate"], "run", verdict=said, digits=1)
        if "iconclick" in styles and "unseen" in parts:  # icons drawn in an art style the reader never trained on
            unseen = work / "clicknet-iconclick-3arts.keras"
            train_steps(work, unseen, timings, "iconclick", "--param", f"art={SEEN_ARTS}")
            result = attack_once(work / "attack-unseen-art", "--model", unseen, "--model", models["iconclick"],
                            "--attacker", "ddddocr-click", "--style", "iconclick", "--strength", 0.5,
                            "--param", "art=fluent", "--count", 1000, "--seed", TEST_SEED)  # fmt: skip
            show(result, "1,000 fresh iconclick drawn in fluent")
            for label, r in result["per_attacker"].items():
                who = {"clicknet-iconclick-3arts (clicknet)": "clicknet trained on the other three arts",
                       "clicknet-iconclick (clicknet)": "clicknet trained on all four"}.get(label, label)  # fmt: skip
                row = f"`iconclick` in fluent, {who}"
                said = finding.add_attack(row, "in order", r, "run", digits=1, interval_digits=1)
                finding.add(row, "targets hit", r["target_hit_rate"], "run", verdict=said, digits=1)
        finding.run("run", note=trainings_note(timings))
        print(finding.write())

    if "sweep" in parts:
        finding = Finding("click-strength", "Click-in-order CAPTCHAs over strength",
                          "The clicknet readers of [click](click.md) (each trained at strength 0.5 on its style) "
                          "and ddddocr-click on 300 fresh challenges at each strength: every target clicked in "
                          "order, with its Wilson 95% interval.",
                          "the style and strength", "attacker", ["clicknet", "ddddocr-click"])  # fmt: skip
        for style in styles:
            sweep = work / f"sweep-{style}"
            if not (sweep / "report.json").is_file():
                cli("sweep", "--model", models[style], "--attacker", "ddddocr-click", "--style", style,
                    "--strength", "0:1:5", "--count", 300, "--seed", TEST_SEED + 1, "--out", sweep, "--force")  # fmt: skip
            report = json.loads((sweep / "report.json").read_text())
            for step in report["steps"]:
                for label, r in step["per_attacker"].items():
                    column = "clicknet" if "clicknet" in label else label
                    finding.add_attack(f"`{style}` at {step['value']}", column, r, "run", digits=1, interval_digits=1)
                    print(f"{style} at {step['value']}: {label} {r['captcha_accuracy']:.1%}", flush=True)
        finding.run("run", note=", ".join(str(work / f"sweep-{s}") for s in styles))
        print(finding.write())
    print(f"{time.perf_counter() - start:.0f} s in all", flush=True)


if __name__ == "__main__":
    main()
