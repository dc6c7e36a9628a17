"""How many pseudo-labels a semi-supervised fine-tune should take: ctc's few-label step of
benchmarks/real_recipe.py (its synthetic stage, then 100 labelled stand-in real CAPTCHAs plus the
other 900 unlabelled), with the teacher's confident readings capped at 1 (the default), 3 and 9
pseudo-labels an epoch per labelled CAPTCHA (9: every one of the 900 it is sure of), beside the 100
alone; all attack the 400. Models stay in --work (shared with real_recipe.py's): run it again to go on.

    python benchmarks/pseudo_share.py [--work results/real-recipe] [--shares 1,3,9]

It writes results/published/pseudo-share.json (benchmarks/publish.py says how to publish it).
"""

import argparse
from pathlib import Path

from real_recipe import few_labels, real_corpus, synthetic_stage
from recipe_steps import cli, publish_attack, train_once


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--work", default="results/real-recipe")
    parser.add_argument("--synthetic", type=int, default=20000)
    parser.add_argument("--shares", default="1,3,9")
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    real_corpus(work)
    timings = {}
    synthetic = synthetic_stage(work, "ctc", args.synthetic, timings)
    few, scraped = few_labels(work)
    start = ["--dataset", few, "--charset", "alnum", "--from", synthetic]
    models = [work / "ctc-100.keras"]
    train_once(models[0], timings, "ctc on the 100 alone", "--attacker", "ctc", *start)
    for share in args.shares.split(","):
        out = work / f"ctc-100-plus-900-share-{share}.keras"
        train_once(out, timings, f"ctc, 100 + 900 unlabelled, {share} per labelled",
                   "--attacker", f"ctc:pseudo_per_labelled={share}", *start, "--unlabelled", scraped)  # fmt: skip
        models.append(out)
    report = work / "attack-pseudo-share"
    cli("attack", *[x for m in models for x in ("--model", m)], "--dataset", work / "real-test",
        "--charset", "alnum", "--out", report, "--force")  # fmt: skip
    publish_attack(
        report,
        timings,
        "the 400 stand-in real CAPTCHAs",
        "pseudo-share",
        "Few labels: how many pseudo-labels the teacher should add",
        "benchmarks/real_recipe.py's stand-in corpus (six-character `alnum` CAPTCHAs of `serif_line` variant=1): ctc after its synthetic stage, fine-tuned on 100 labelled plus the other 900 unlabelled, the teacher's confident readings capped at 1, 3 and 9 an epoch per labelled CAPTCHA; beside the 100 alone. CAPTCHA success on the 400 with its Wilson 95% interval, and character accuracy.",
    )


if __name__ == "__main__":
    main()
