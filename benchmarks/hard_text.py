"""The hard real text corpus we do not have, stood in for: 4,690 university login CAPTCHAs in three
looks (benchmarks/plugins/campus_login.py: hatched mixed fonts, bold capitals under black
strokes, thin multicolour capitals), four characters of 0-9a-z labelled in lower case, about 1% of
the labels wrong (as the real corpus's); 3,690 to train, 1,000 to test, scored ignoring case.

Each reader a strong attacker would try is trained from its base on the 3,690 with the defaults
otherwise (until it converges), then all are attacked together with the OCR engines off the shelf:
the default `ctc` (the baseline), `ctc` reading colour, wider ones, a more patient one (three
seeds, and the three as one ensemble), and three of them reading eight views each (`tta=8`).
Models stay in --work (the wide reader's own base in ./models, where `train captcha` keeps bases,
trained on the base mixture first: a long run): run it again to go on, `--readers` to choose.

    python benchmarks/hard_text.py [--work results/hard-text] [--readers base,colour,...]

It writes results/published/hard-text.json (benchmarks/publish.py says how to publish it).
"""

import argparse
import csv
from pathlib import Path

import numpy as np
from recipe_steps import cli, publish_attack, split, train_once

PLUGINS = Path(__file__).parent / "plugins"
CHARSET = "0123456789abcdefghijklmnopqrstuvwxyz"
READERS = {  # name: (what the results call it, the attacker spec, other options of `train captcha`)
    # base.keras was trained under the plateau rule before still_fitting (its row says so); a fresh
    # --work trains both under the rule now
    "base": ("ctc from its base (the default)", "ctc", []),
    "waits": (
        "ctc from its base, every default, its plateaus waiting while it still learns (the rule since)",
        "ctc",
        [],
    ),
    "colour": ("ctc reading colour, from its base", "ctc:colour=true", []),
    "wide-scratch": (
        "ctc twice as wide (32 filters, 256 GRU units), from scratch",
        "ctc:filters=32,rnn_units=256",
        ["--from", "scratch"],
    ),
    "wide": (
        "ctc twice as wide, from a base of its shape (trained on the base mixture first)",
        "ctc:filters=32,rnn_units=256",
        [],
    ),
    "head": ("ctc with 256 GRU units, its convolutions from its base", "ctc:rnn_units=256", []),
    "patient": ("ctc from its base, patience 8 epochs (3 by default)", "ctc:patience=8", []),
    "patient-2": ("the same, seed 2", "ctc:patience=8", ["--seed", 2]),
    "patient-3": ("the same, seed 3", "ctc:patience=8", ["--seed", 3]),
}


def mislabel(folder: Path, share: float, seed: int) -> int:
    """Change one character of `share` of the labels, as a hand-labelled corpus has wrong ones."""
    path = folder / "labels.csv"
    rows = list(csv.reader(path.open()))
    rng = np.random.default_rng(seed)
    wrong = rng.choice(np.arange(1, len(rows)), round(share * (len(rows) - 1)), replace=False)
    for i in wrong:
        text = rows[i][1]
        k = int(rng.integers(len(text)))
        rows[i][1] = text[:k] + str(rng.choice([c for c in CHARSET if c != text[k]])) + text[k + 1 :]
    with path.open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    return len(wrong)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--work", default="results/hard-text")
    parser.add_argument("--readers", default=",".join(READERS))
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    if not (work / "test").is_dir():
        cli("generate", "--style", "campus_login", "--plugins", PLUGINS, "--charset", CHARSET, "--count", 4690,
            "--seed", 44, "--strength", 0.5, "--workers", 2, "--out", work / "corpus", "--force")  # fmt: skip
        print(f"{mislabel(work / 'corpus', 0.01, 44)} labels made wrong", flush=True)
        split(work / "corpus", work / "train", work / "test", 3690)
    timings, chosen = {}, [r for r in args.readers.split(",") if r]
    for name in chosen:
        label, spec, options = READERS[name]
        train_once(work / f"{name}.keras", timings, label, "--attacker", spec, "--dataset", work / "train", *options)
        print(f"{label}: trained", flush=True)
    members = ["patient", "patient-2", "patient-3"]
    if all(m in chosen for m in members):  # the three as one reader: the mean of their per-step logits
        if not (work / "ensemble.keras").is_file():
            cli("ensemble", *[x for m in members for x in ("--model", work / f"{m}.keras")],
                "--out", work / "ensemble.keras")  # fmt: skip
        chosen.append("ensemble")
    viewed = [f"{name}.keras:tta=8" for name in ("waits", "patient-2", "ensemble") if name in chosen]
    report = work / "attack"
    cli("attack", *[x for name in chosen for x in ("--model", work / f"{name}.keras")],
        *[x for spec in viewed for x in ("--model", f"{work}/{spec}")],
        "--attacker", "ddddocr", "--attacker", "rapidocr", "--dataset", work / "test", "--ignore-case",
        "--out", report, "--force")  # fmt: skip
    publish_attack(
        report,
        timings,
        "the 1,000 stand-in login CAPTCHAs",
        "hard-text",
        "Hard real text, stood in for: which reader a strong attacker would field",
        "4,690 CAPTCHAs like a university login's (benchmarks/plugins/campus_login.py: 92x34 hatched mixed fonts and italics, 100x35 bold multicolour capitals under short black strokes, 90x30 thin multicolour capitals; 0-9a-z labelled in lower case, 1% of labels wrong), 3,690 to train on, 1,000 to test, case ignored. CAPTCHA success on the 1,000 with its Wilson 95% interval, and character accuracy.",
    )


if __name__ == "__main__":
    main()
