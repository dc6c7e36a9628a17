"""The second corpus we do not have, stood in for: 2,000 four-digit login-page CAPTCHAs (70x30 JPEG,
coloured serif digits on a pale background crossed by thin lines: plugins/login_digits.py),
1,500 to train and 500 to test. ctc is pre-trained on 20,000 CAPTCHAs of the built-in `noisy`
style, then fine-tuned on the 1,500, every step with the defaults (from the shipped base, until
it converges); ddddocr reads the 500 off the shelf beside it, and ctc fine-tuned from its base
alone shows what the pre-training adds. Models stay in --work: run it again to go on.

    python benchmarks/login_corpus.py [--work results/login-corpus]

It writes results/published/login-corpus.json (benchmarks/publish.py says how to publish it).
"""

import argparse
from pathlib import Path

from recipe_steps import cli, publish_attack, split, train_once

PLUGINS = Path(__file__).parent / "plugins"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--synthetic", type=int, default=20000)
    parser.add_argument("--work", default="results/login-corpus")
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    if not (work / "test").is_dir():
        cli(
            "generate",
            "--style",
            "login_digits",
            "--plugins",
            PLUGINS,
            "--count",
            2000,
            "--seed",
            91,
            "--strength",
            0.5,
            "--workers",
            2,
            "--out",
            work / "corpus",
            "--force",
        )
        split(work / "corpus", work / "train", work / "test", 1500)
    timings = {}
    noisy = work / "ctc-noisy.keras"
    train_once(
        noisy,
        timings,
        "ctc on 20,000 noisy",
        "--attacker",
        "ctc",
        "--style",
        "noisy",
        "--count",
        args.synthetic,
        "--length",
        "4",
    )
    train_once(
        work / "ctc-tuned.keras",
        timings,
        "ctc fine-tuned on the 1,500",
        "--attacker",
        "ctc",
        "--dataset",
        work / "train",
        "--from",
        noisy,
    )
    train_once(
        work / "ctc-base-tuned.keras",
        timings,
        "ctc from its base on the 1,500",
        "--attacker",
        "ctc",
        "--dataset",
        work / "train",
    )
    report = work / "attack"
    models = ["ctc-tuned", "ctc-base-tuned", "ctc-noisy"]
    cli(
        "attack",
        *[x for m in models for x in ("--model", work / f"{m}.keras")],
        "--attacker",
        "ddddocr",
        "--dataset",
        work / "test",
        "--out",
        report,
        "--force",
    )
    publish_attack(
        report,
        timings,
        "the 500 stand-in login CAPTCHAs",
        "login-corpus",
        "A login page's four-digit CAPTCHAs, stood in for",
        "2,000 four-digit CAPTCHAs like a login page's (70x30 JPEG, coloured serif digits, thin lines; benchmarks/plugins/login_digits.py): 1,500 to train on, 500 to test; every default. CAPTCHA success on the 500 with its Wilson 95% interval, and character accuracy.",
    )


if __name__ == "__main__":
    main()
