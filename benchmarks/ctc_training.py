"""Training time to the default stopping point on 10,000 generated CAPTCHAs, ctc (from scratch)
beside segment (from the MNIST network), same CAPTCHAs, then both attack 1,000 fresh ones.

    python benchmarks/ctc_training.py --mnist models/mnist.keras [--count 10000] [--style distorted]
"""
import argparse
import tempfile
import time
from pathlib import Path

from captchalab.attack import attack_many
from captchalab.data.dataset import GenerationSpec, Source


def main():
    from captchalab.attackers import TrainSettings, get_attacker, load_attacker
    from captchalab.train import train_attacker
    parser = argparse.ArgumentParser()
    parser.add_argument("--mnist", required=True)
    parser.add_argument("--count", type=int, default=10000)
    parser.add_argument("--style", default="distorted")
    parser.add_argument("--strength", type=float, default=0.5)
    parser.add_argument("--keep", help="folder to keep the trained models in")
    args = parser.parse_args()
    train = Source(spec=GenerationSpec(args.style, args.count, seed=1, strength=args.strength))
    test = Source(spec=GenerationSpec(args.style, 1000, seed=2, strength=args.strength))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.keep or tmp)
        models = []
        for name, start in (("ctc", None), ("segment", Path(args.mnist))):
            out = folder / f"{name}-{args.style}.keras"
            began = time.perf_counter()
            info = train_attacker(get_attacker(name)(), train, out, TrainSettings(seed=1), start)
            print(f"{name}: trained on {args.count} {args.style} CAPTCHAs in {time.perf_counter() - began:.0f} s "
                  f"({info['epochs_run']} epochs, {info['train_images_per_second']:.0f} images/s), "
                  f"validation accuracy {info['val_accuracy']:.4f}", flush=True)
            models.append(load_attacker(out))
        report, _ = attack_many(models, {args.style: test})
        for label, r in report["per_attacker"].items():
            print(f"{label}: CAPTCHA accuracy {r['captcha_accuracy']:.2%} on 1,000 fresh CAPTCHAs "
                  f"({r['captchas_per_second']:.0f}/s)")


if __name__ == "__main__":
    main()
