"""Off-the-shelf OCR against trained readers on a real corpus: ../shared/data/real-digits-4 (2,000
four-digit login CAPTCHAs), the first 1,500 to train, the last 500 to test, as its README splits it.

1. `ctc` trained from its base on the 1,500 with every default (and `segment` from the MNIST
   network, with --mnist), until it converges;
2. ddddocr, rapidocr and tesseract read the 500 off the shelf, beside them, in one attack;
3. each off-the-shelf engine's throughput through `attack` (decoding, preparing, reading, one
   process) beside its own ceiling: the engine alone on the same pre-decoded CAPTCHAs, in the same
   process and threads.

    python benchmarks/real_digits.py [--corpus ../shared/data/real-digits-4] [--work results/real-digits] [--mnist models/mnist.keras]

Models stay in --work: run it again to go on where it stopped. It writes
results/published/real-digits.json (benchmarks/publish.py says how to publish it).
"""

import argparse
import json
import time
from pathlib import Path

from publish import Finding
from recipe_steps import cli, split, train_once, trainings_note

from captchalab.attack import attack_source
from captchalab.attackers import get_attacker
from captchalab.data.dataset import Source, read_dataset

ENGINES = ("ddddocr", "rapidocr", "tesseract")


def ceiling(name: str, source) -> float:
    """The engine alone, CAPTCHAs a second, on pre-decoded and prepared CAPTCHAs (after a warm-up)."""
    reader = get_attacker(name)("0123456789")
    prepared = [reader.prepare(source.sample(i).image, None) for i in range(len(source))]
    reader.read_prepared(prepared[:5])  # loads the engine
    start = time.perf_counter()
    reader.read_prepared(prepared)
    return len(prepared) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--corpus", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/real-digits-4"
    )
    parser.add_argument("--work", type=Path, default=Path("results/real-digits"))
    parser.add_argument("--mnist", type=Path, help="the MNIST network, for segment (captchalab train mnist)")
    args = parser.parse_args()
    train, test = args.work / "train", args.work / "test"
    if not (test / "labels.csv").is_file():
        split(args.corpus, train, test, 1500)
    timings: dict = {}
    start = time.perf_counter()
    train_once(args.work / "ctc.keras", timings, "ctc", "--dataset", train, "--attacker", "ctc")
    models = ["--model", args.work / "ctc.keras"]
    if args.mnist:
        train_once(args.work / "segment.keras", timings, "segment", "--dataset", train, "--attacker", "segment",
                   "--from", args.mnist)  # fmt: skip
        models += ["--model", args.work / "segment.keras"]
    readers = [arg for name in ENGINES for arg in ("--attacker", name)]
    out = args.work / "attack"
    cli("attack", *models, *readers, "--dataset", test, "--out", out, "--force")
    report = json.loads((out / "report.json").read_text())

    finding = Finding(
        "real-digits",
        "Off-the-shelf OCR beside trained readers on real four-digit CAPTCHAs",
        setting="../shared/data/real-digits-4: trained on the first 1,500, the last 500 attacked; "
        "off-the-shelf engines read their output into digits",
        rows_are="attacker",
        columns_are="measure",
        columns=["success", "characters", "speed"],
    )
    finding.run("run", wall_seconds=time.perf_counter() - start, note=trainings_note(timings))
    for label, r in report["per_attacker"].items():
        said = finding.add_attack(r["attacker"], "success", r, "run", digits=1, interval_digits=1)
        finding.add(r["attacker"], "characters", r["char_accuracy"], "run", verdict=said, digits=1)
        print(f"{r['attacker']}: {r['captcha_accuracy']:.1%} {r['captcha_accuracy_ci95']}", flush=True)
    source = Source(dataset=read_dataset(test, charset="0123456789"))
    for name in ENGINES:
        reader = get_attacker(name)("0123456789")
        attack_source(reader, source, workers=0)  # warm-up: loads the engine
        begun = time.perf_counter()
        attack_source(reader, source, workers=0)
        through = len(source) / (time.perf_counter() - begun)
        alone = ceiling(name, source)
        finding.add(f"{name}: `attack`, one process", "speed", round(through, 1), "run", unit="CAPTCHAs/s")
        finding.add(f"{name}: the engine alone, pre-decoded", "speed", round(alone, 1), "run", unit="CAPTCHAs/s")
        print(f"{name}: {through:.1f} CAPTCHAs/s through attack, {alone:.1f} alone", flush=True)
    print(finding.write())


if __name__ == "__main__":
    main()
