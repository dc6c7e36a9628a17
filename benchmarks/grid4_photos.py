"""4x4 scenes of photographs: the readers on the detector's frozen, pretrained features
(`detareas`: coverage maps; `detsquares`: each square from answers alone) beside `areas`, which
learns from nothing, each trained with every default on --count grid4 challenges drawn from
scikit-image's sample photographs (captchalab.testing.sample_photo_folder), attacking the same
--test-count fresh ones.

    python benchmarks/grid4_photos.py [--work results/grid4-photos] [--count 1500] [--test-count 300] [--strength 0.5]

Models stay in --work: run it again to go on where it stopped. The attacks go into
results/published/grid4-photos.json (benchmarks/publish.py says how to publish it).
"""

import argparse
import json
import time
from pathlib import Path

from publish import Finding
from recipe_steps import cli, train_once, trainings_note

from captchalab.testing import sample_photo_folder

READERS = ("areas", "detareas", "detsquares")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("results/grid4-photos"))
    parser.add_argument("--count", type=int, default=1500)
    parser.add_argument("--test-count", type=int, default=300)
    parser.add_argument("--strength", type=float, default=0.5)
    args = parser.parse_args()
    photos = args.work / "photos"
    if not photos.is_dir():
        sample_photo_folder(photos)
    design = ["--style", "grid4", "--param", f"tiles={photos.resolve()}", "--strength", args.strength]
    timings: dict = {}
    start = time.perf_counter()
    for reader in READERS:
        train_once(args.work / f"{reader}.keras", timings, reader, *design, "--attacker", reader, "--count", args.count)
    models = [arg for reader in READERS for arg in ("--model", args.work / f"{reader}.keras")]
    out = args.work / "attack"
    cli("attack", *models, *design, "--count", args.test_count, "--seed", 7, "--out", out, "--force")
    report = json.loads((out / "report.json").read_text())
    finding = Finding(
        "grid4-photos",
        "4x4 scenes of photographs: pretrained features against learning from nothing",
        setting=f"grid4 at strength {args.strength:g} drawn from scikit-image's sample photographs (4 classes, "
        f"36 pictures); each reader trained on {args.count:,} challenges, {args.test_count:,} fresh ones attacked",
        rows_are="attacker",
        columns_are="measure",
        columns=["success", "tile precision", "tile recall"],
    )
    finding.run("run", wall_seconds=time.perf_counter() - start, note=trainings_note(timings))
    for label, r in report["per_attacker"].items():
        said = finding.add_attack(r["attacker"], "success", r, "run", digits=1, interval_digits=1)
        for measure in ("tile precision", "tile recall"):
            finding.add(r["attacker"], measure, r[measure.replace(" ", "_")], "run", verdict=said, digits=1)
        print(f"{r['attacker']}: {r['captcha_accuracy']:.1%} {r['captcha_accuracy_ci95']}, {r['state']}", flush=True)
    print(finding.write())


if __name__ == "__main__":
    main()
