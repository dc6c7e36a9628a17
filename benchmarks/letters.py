"""Letters. (1) `distorted --charset alnum --length 6` at strength 0.5: segment (from the
rendered-characters network) and ctc (from scratch) each trained on the same 20,000 CAPTCHAs,
then 1,000 fresh ones. (2) Whether the rendered-characters start beats training from scratch on
a small set: segment on 500 CAPTCHAs from each start, same data and epochs.

    python benchmarks/letters.py --chars models/chars-alnum.keras [--count 20000]

It writes results/published/letters.json (benchmarks/publish.py says how to publish it).
"""

import argparse
import tempfile
import time
from pathlib import Path

from captchalab.attack import attack_many
from captchalab.charset import NAMED
from captchalab.data.dataset import GenerationSpec, Source
from publish import Finding


def main():
    from captchalab.attackers import TrainSettings, get_attacker, load_attacker
    from captchalab.train import train_attacker

    parser = argparse.ArgumentParser()
    parser.add_argument("--chars", required=True)
    parser.add_argument("--count", type=int, default=20000)
    parser.add_argument("--small", type=int, default=500)
    parser.add_argument("--keep")
    args = parser.parse_args()
    alnum = NAMED["alnum"]
    spec = lambda n, seed: GenerationSpec("distorted", n, 6, 6, alnum, seed, 0.5)
    test = {"distorted": Source(spec=spec(1000, 2))}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.keep or tmp)
        models = []
        wall = {}
        all_start = time.perf_counter()
        finding = Finding(
            "letters",
            "Letters: six `alnum` characters",
            "`distorted --charset alnum --length 6` at strength 0.5; attackers trained on "
            f"{args.count:,} (or {args.small:,}) CAPTCHAs, tested on 1,000 fresh ones.",
            "the attacker, its start and its training CAPTCHAs",
            "attacker",
            ["1,000 fresh CAPTCHAs", "characters", "wall time"],
        )
        for name, start in (("segment", Path(args.chars)), ("ctc", None)):
            out = folder / f"{name}-alnum6.keras"
            began = time.perf_counter()
            info = train_attacker(
                get_attacker(name)(alnum), Source(spec=spec(args.count, 1)), out, TrainSettings(seed=1), start
            )
            print(
                f"{name}: {args.count} training CAPTCHAs, {time.perf_counter() - began:.0f} s, "
                f"{info['epochs_run']} epochs, validation {info['val_accuracy']:.4f}",
                flush=True,
            )
            models.append(load_attacker(out))
            wall[name] = time.perf_counter() - began
        report, _ = attack_many(models, test)
        for label, r in report["per_attacker"].items():
            confused = ", ".join(c["truth"] + "->" + c["guess"] for c in r["most_confused"][:5])
            print(
                f"{label}: CAPTCHA accuracy {r['captcha_accuracy']:.2%}, character accuracy {r['char_accuracy']:.2%}; "
                f"most confused: {confused}"
            )
            row = f"{label}, {args.count:,} training CAPTCHAs"
            said = finding.add_attack(row, "1,000 fresh CAPTCHAs", r, "run")
            finding.add(row, "characters", r["char_accuracy"], "run", verdict=said)
        for name, seconds in wall.items():
            finding.add(f"{name}: training on {args.count:,} CAPTCHAs", "wall time", round(seconds), "run", unit="s")
        small = []
        for start in (Path(args.chars), None):
            out = folder / f"segment-small-{'chars' if start else 'scratch'}.keras"
            train_attacker(
                get_attacker("segment")(alnum),
                Source(spec=spec(args.small, 3)),
                out,
                TrainSettings(epochs=8, seed=3),
                start,
            )
            small.append(load_attacker(out))
        report, _ = attack_many(small, test)
        for label, r in report["per_attacker"].items():
            print(
                f"{args.small} training CAPTCHAs, {label}: CAPTCHA accuracy {r['captcha_accuracy']:.2%}, "
                f"character accuracy {r['char_accuracy']:.2%}"
            )
            finding.add_attack(
                f"{label}, {args.small:,} training CAPTCHAs (8 epochs)", "1,000 fresh CAPTCHAs", r, "run"
            )
        finding.run("run", time.perf_counter() - all_start)
        print(finding.write())


if __name__ == "__main__":
    main()
