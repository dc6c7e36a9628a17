"""Training time to convergence (the default stopping rule) on 10,000 generated CAPTCHAs: ctc from
scratch and from its shipped base, beside segment from the MNIST network, same CAPTCHAs, then all
attack 1,000 fresh ones. `CAPTCHALAB_PRECISION=float32` measures it without bfloat16.

    python benchmarks/ctc_training.py --mnist models/mnist.keras [--count 10000] [--style distorted]

It writes results/published/time-to-converge.json (benchmarks/publish.py says how to publish it).
"""

import argparse
import tempfile
import time
from pathlib import Path

from captchalab.attack import attack_many
from captchalab.data.dataset import GenerationSpec, Source
from publish import Finding
from recipe_steps import result_line


def main():
    from captchalab.attackers import TrainSettings, get_attacker, load_attacker
    from captchalab.charset import DIGITS
    from captchalab.pretrained import ensure_base
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
        finding = Finding(
            "time-to-converge",
            "Time to a converged attacker",
            f"{args.count:,} `{args.style}` CAPTCHAs at strength {args.strength}, four digits, the "
            "default stopping rule; tested on 1,000 fresh ones.",
            "the attacker and its start",
            "attacker",
            ["1,000 fresh CAPTCHAs", "wall time"],
        )
        start_all = time.perf_counter()
        runs = (
            ("ctc", "scratch", None),
            ("ctc", "base", ensure_base("ctc", DIGITS, lambda m: None)),
            ("segment", "mnist", Path(args.mnist)),
        )
        for name, label, start in runs:
            out = folder / f"{name}-{label}-{args.style}.keras"
            began = time.perf_counter()
            info = train_attacker(get_attacker(name)(), train, out, TrainSettings(seed=1), start)
            verdict = info["convergence"]
            print(
                f"{name} from {label}: trained on {args.count} {args.style} CAPTCHAs in "
                f"{time.perf_counter() - began:.0f} s ({info['epochs_run']} epochs, "
                f"{info['train_images_per_second']:.0f} images/s), validation accuracy {info['val_accuracy']:.4f}, "
                + ("converged" if verdict["converged"] else "NOT converged: " + "; ".join(verdict["reasons"]))
                + f" ({verdict['stopped']})",
                flush=True,
            )
            models.append(load_attacker(out))
            row = f"{name} from {label}"
            finding.add(
                row,
                "wall time",
                round(time.perf_counter() - began),
                "run",
                unit="s",
                note=f"{info['epochs_run']} epochs, {verdict['stopped']}",
            )
        report, _ = attack_many(models, {args.style: test})
        for model, (label, r) in zip(runs, report["per_attacker"].items()):
            print(result_line(label, r, f"of 1,000 fresh CAPTCHAs ({r['captchas_per_second']:.0f}/s)"))
            finding.add_attack(f"{model[0]} from {model[1]}", "1,000 fresh CAPTCHAs", r, "run")
        finding.run("run", time.perf_counter() - start_all)
        print(finding.write())


if __name__ == "__main__":
    main()
