"""Letters. (1) `distorted --charset alnum --length 6` at strength 0.5: segment (from the
rendered-characters network) and ctc (from scratch) each trained on the same 20,000 CAPTCHAs,
then 1,000 fresh ones. (2) Whether the rendered-characters start beats training from scratch on
a small set: segment on 500 CAPTCHAs from each start, same data and epochs.

    python benchmarks/letters.py --chars models/chars-alnum.keras [--count 20000]
"""

import argparse
import tempfile
import time
from pathlib import Path

from captchalab.attack import attack_many
from captchalab.charset import NAMED
from captchalab.data.dataset import GenerationSpec, Source


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
        report, _ = attack_many(models, test)
        for label, r in report["per_attacker"].items():
            confused = ", ".join(c["truth"] + "->" + c["guess"] for c in r["most_confused"][:5])
            print(
                f"{label}: CAPTCHA accuracy {r['captcha_accuracy']:.2%}, character accuracy {r['char_accuracy']:.2%}; "
                f"most confused: {confused}"
            )
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


if __name__ == "__main__":
    main()
