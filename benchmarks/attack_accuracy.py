"""The segment attacker's accuracy, end to end through the library (what `train captcha` and
`attack` run):

- clean: train on 3,000 generated CAPTCHAs, attack 1,000 fresh ones (another seed);
- distorted at default strength: train on --distorted-count CAPTCHAs, attack 1,000;
- transfer learning: 500 training CAPTCHAs from MNIST weights vs from scratch, same data.

    python benchmarks/attack_accuracy.py --mnist models/mnist.keras [--distorted-count 10000]

It writes results/published/attack-accuracy.json (benchmarks/publish.py says how to publish it).
"""

import argparse
import tempfile
import time
from pathlib import Path

from captchalab.attack import attack_source
from captchalab.data.dataset import GenerationSpec, Source
from publish import Finding

FINDING = Finding(
    "attack-accuracy",
    "The segment attacker end to end",
    "segment trained for 8 epochs on generated "
    "CAPTCHAs (from MNIST or from scratch), attacking 1,000 fresh ones of another seed.",
    "the style, training CAPTCHAs and start",
    "training",
    ["success", "characters", "cut as drawn"],
)


def run(style, train_count, init, out, epochs=8, test_count=1000, strength=0.5):
    # imported here, not at the top: worker processes re-import this script
    from captchalab.attackers import TrainSettings, get_attacker, load_attacker
    from captchalab.train import train_attacker

    start = time.perf_counter()
    info = train_attacker(
        get_attacker("segment")(),
        Source(spec=GenerationSpec(style, train_count, seed=1, strength=strength)),
        out,
        TrainSettings(epochs=epochs, seed=1),
        init,
    )
    result, _ = attack_source(
        load_attacker(out), Source(spec=GenerationSpec(style, test_count, seed=2, strength=strength))
    )
    print(
        f"{style:10s} train {train_count:6d} from {'MNIST' if init else 'scratch':7s}: "
        f"CAPTCHA accuracy {result['captcha_accuracy']:.2%}, char {result['char_accuracy']:.2%}, "
        f"segmentation vs boxes {result['segmentation_box_rate']:.2%}, val {info['val_accuracy']:.4f} "
        f"({time.perf_counter() - start:.0f} s)",
        flush=True,
    )
    row = f"{style}, strength {strength}, {train_count:,} CAPTCHAs from {'MNIST' if init else 'scratch'}"
    said = FINDING.add_attack(row, "success", result, "run")
    FINDING.add(row, "characters", result["char_accuracy"], "run", verdict=said)
    FINDING.add(row, "cut as drawn", result["segmentation_box_rate"], "run", verdict=said)
    return result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mnist", required=True, help="MNIST model to start from")
    parser.add_argument("--distorted-count", type=int, default=10000)
    parser.add_argument("--only", choices=["clean", "distorted", "transfer"], default=None)
    args = parser.parse_args()
    mnist = Path(args.mnist)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.only in (None, "clean"):
            run("clean", 3000, mnist, tmp / "clean.keras")
        if args.only in (None, "distorted"):
            run("distorted", args.distorted_count, mnist, tmp / "distorted.keras")
        if args.only in (None, "transfer"):
            for init in (mnist, None):
                run("distorted", 500, init, tmp / f"t-{bool(init)}.keras", strength=0.8)
    FINDING.run("run")
    print(FINDING.write())


if __name__ == "__main__":
    main()
