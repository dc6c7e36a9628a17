"""The synthetic-then-real recipe on a stand-in for a scraped corpus, run the way a researcher
would, through the CLI:

1. the "real" corpus: 1,400 six-character CAPTCHAs of lower-case letters and digits from
   plugins/serif_line.py with variant=1 (another face, slant, background, lines and JPEG than the
   synthetic style), split 1,000 for training / 400 for testing;
2. each attacker trained on 20,000 synthetic CAPTCHAs of the resembling style (variant=0),
   segment starting from the `train chars` network, ctc from its base (shipped for alnum);
3. each fine-tuned on the 1,000 "real" ones (`train captcha --dataset ... --from synthetic.keras`);
4. both attack the 400, beside ddddocr off the shelf and each attacker trained on the 1,000 alone;
5. few labels: ctc fine-tuned from the synthetic stage on the first 100 of the 1,000 only, and on
   those 100 plus the other 900 unlabelled (`--unlabelled`, pseudo-labels from a mean teacher).

Every step runs with the defaults (no epochs or rates chosen here): attackers start from their
base and train until they converge. Each model is kept in --work, so an interrupted run goes on
where it stopped.

    python benchmarks/real_recipe.py [--synthetic 20000] [--work results/real-recipe] [--attackers ctc]

It writes results/published/synthetic-to-real.json (benchmarks/publish.py says how to publish it).
"""

import argparse
from pathlib import Path

from recipe_steps import cli, publish_attack, split, train_once

HERE = Path(__file__).parent
PLUGINS = HERE / "plugins"


COMMON = ["--plugins", PLUGINS, "--charset", "alnum"]


def real_corpus(work: Path) -> None:
    """The stand-in real corpus, split: work/real-train (1,000) and work/real-test (400)."""
    if not (work / "real-test").is_dir():
        cli("generate", "--style", "serif_line", *COMMON, "--length", "6", "--count", 1400, "--seed", 77,
            "--param", "variant=1", "--strength", 0.6, "--workers", 2, "--out", work / "real", "--force")  # fmt: skip
        split(work / "real", work / "real-train", work / "real-test", 1000)


def synthetic_stage(work: Path, attacker: str, count: int, timings: dict) -> Path:
    """`attacker` trained from its base on `count` CAPTCHAs of the resembling synthetic style."""
    synthetic = work / f"{attacker}-synthetic.keras"
    train_once(synthetic, timings, f"{attacker} synthetic", "--attacker", attacker, "--style", "serif_line",
               *COMMON, "--length", "6", "--count", count, "--strength", 0.6, "--from", "base")  # fmt: skip
    return synthetic


def few_labels(work: Path) -> tuple[Path, Path]:
    """The first 100 of the 1,000 labelled, and the other 900 without their labels."""
    few, scraped = work / "real-100", work / "real-900-unlabelled"
    if not scraped.is_dir():
        split(work / "real-train", few, scraped, 100)
        (scraped / "labels.csv").unlink()  # unlabelled: the images only
    return few, scraped


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--synthetic", type=int, default=20000)
    parser.add_argument("--work", default="results/real-recipe")
    parser.add_argument(
        "--attackers",
        default="segment,ctc",
        help="which of segment,ctc to run (ctc alone "
        "measures the few-label steps too, which start from ctc's synthetic stage)",
    )
    args = parser.parse_args()
    asked = args.attackers.split(",")
    if set(asked) - {"segment", "ctc"}:
        parser.error(f"--attackers: choose among segment,ctc, not {args.attackers!r}")
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    real_corpus(work)
    timings = {}
    attackers = [a for a in ("segment", "ctc") if a in asked]
    for attacker in attackers:
        synthetic = synthetic_stage(work, attacker, args.synthetic, timings)
        train_once(
            work / f"{attacker}-tuned.keras",
            timings,
            f"{attacker} fine-tune",
            "--attacker",
            attacker,
            "--dataset",
            work / "real-train",
            "--charset",
            "alnum",
            "--from",
            synthetic,
        )
    models = [work / f"{a}-{k}.keras" for a in attackers for k in ("tuned", "synthetic")]
    if "ctc" in attackers:
        few, scraped = few_labels(work)
        for name, extra in (("ctc-100", []), ("ctc-100-plus-900-unlabelled", ["--unlabelled", scraped])):
            train_once(
                work / f"{name}.keras",
                timings,
                name,
                "--attacker",
                "ctc",
                "--dataset",
                few,
                "--charset",
                "alnum",
                "--from",
                work / "ctc-synthetic.keras",
                *extra,
            )
            models.append(work / f"{name}.keras")
    for attacker in attackers:  # the comparison without the synthetic stage, last: it decides nothing else
        real_only = work / f"{attacker}-real-only.keras"
        train_once(
            real_only,
            timings,
            f"{attacker} real only",
            "--attacker",
            attacker,
            "--dataset",
            work / "real-train",
            "--charset",
            "alnum",
            "--from",
            "base",
        )
        models.append(real_only)
    report = work / "attack"
    cli(
        "attack",
        *[x for m in models for x in ("--model", m)],
        "--attacker",
        "ddddocr",
        "--dataset",
        work / "real-test",
        "--charset",
        "alnum",
        "--out",
        report,
        "--force",
    )
    publish_attack(
        report,
        timings,
        "the 400 stand-in real CAPTCHAs",
        "synthetic-to-real",
        "From synthetic to real: a site's few hundred labelled CAPTCHAs",
        "A stand-in for a site's corpus: 1,400 six-character `alnum` CAPTCHAs from `serif_line` (benchmarks/plugins) with `variant=1`, 1,000 to fine-tune on, 400 to test; every default. CAPTCHA success on the 400 with its Wilson 95% interval, and character accuracy.",
    )


if __name__ == "__main__":
    main()
