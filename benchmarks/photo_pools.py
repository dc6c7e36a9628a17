"""Image grids of photographs, measured as real adversaries attack them (docs/grids.md): a folder
of labelled photo tiles split by picture, readers trained on challenges built from the training
pictures, attacking challenges built from pictures they never saw (new pictures) and from their
own pool (same pool), beside the pretrained detector off the shelf.

    python benchmarks/photo_pools.py --train TRAIN_PHOTOS --test TEST_PHOTOS [--work results/photo-pools]
    python benchmarks/photo_pools.py --photos PHOTOS     # one folder, split here: pool=train / pool=test

1. `detfeat` (a head on the detector's frozen, pretrained trunk: the default for photographs) and
   `tilecnn` (learning from nothing), each trained with every default on --count grid3
   challenges of the training pictures at --strength, until it converges;
2. each attacks --test-count challenges of the held-out pictures whose prompt is a class the COCO
   detector covers (bicycle, bus, car, hydrant, motorcycle, traffic light, ...: those of the test
   folder that `coco_class` maps), and as many of its own pool (the attack report's "same pool");
3. `detector`, the COCO detector off the shelf, reads the same new-picture challenges.

Models and reports stay in --work: run it again to go on where it stopped. The attacks (one row
each) go into results/published/photo-pools.json (benchmarks/publish.py says how to publish it).
"""

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from publish import Finding
from recipe_steps import cli, train_once, trainings_note

READERS = ("detfeat", "tilecnn")


def covered_classes(folder: Path) -> list[str]:
    """The test folder's classes the COCO detector reads (the prompts of the measured challenges)."""
    from captchalab.data.tiles import load_tile_folder
    from captchalab.detector.coco import coco_class

    return [c for c in load_tile_folder(folder).classes if coco_class(c) is not None]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=Path, help="the training pictures (CLASS/*.jpg)")
    parser.add_argument("--test", type=Path, help="the held-out pictures, none of them in --train")
    parser.add_argument("--photos", type=Path, help="or one folder, split by picture (held_out 0.3)")
    parser.add_argument("--work", type=Path, default=Path("results/photo-pools"))
    parser.add_argument("--count", type=int, default=3000, help="training challenges")
    parser.add_argument("--test-count", type=int, default=500, help="challenges attacked in each pool")
    parser.add_argument("--strength", type=float, default=0.0)
    args = parser.parse_args()
    if bool(args.photos) == bool(args.train and args.test):
        sys.exit("give --train and --test, or --photos")
    if args.photos:
        train = ["--param", f"tiles={args.photos.resolve()}", "--param", "pool=train"]
        test = ["--param", f"tiles={args.photos.resolve()}", "--param", "pool=test"]
        prompts = covered_classes(args.photos)
    else:
        train, test = ["--param", f"tiles={args.train.resolve()}"], ["--param", f"tiles={args.test.resolve()}"]
        prompts = covered_classes(args.test)
    if not prompts:
        sys.exit("no class of the test pictures is one the COCO detector covers")
    args.work.mkdir(parents=True, exist_ok=True)
    timings: dict = {}
    start = time.perf_counter()
    for reader in READERS:
        train_once(args.work / f"{reader}.keras", timings, reader, "--style", "grid3", *train,
                   "--attacker", reader, "--count", args.count, "--strength", args.strength)  # fmt: skip
    design = ["--style", "grid3", *test, "--param", f"prompt={','.join(prompts)}", "--strength", args.strength,
              "--count", args.test_count, "--seed", 7]  # fmt: skip
    reports = {}
    for reader in READERS:  # new pictures and, beside them, the reader's own pool
        out = args.work / f"attack-{reader}"
        shutil.rmtree(out, ignore_errors=True)
        cli("attack", "--model", args.work / f"{reader}.keras", *design, "--out", out)
        reports[reader] = json.loads((out / "report.json").read_text())
    cli("attack", "--attacker", "detector", *design, "--no-pools", "--out", args.work / "attack-detector", "--force")
    reports["detector"] = json.loads((args.work / "attack-detector" / "report.json").read_text())

    finding = Finding(
        "photo-pools",
        "Image grids of photographs: pretrained features, learning from nothing, and a detector off the shelf",
        setting=f"grid3 at strength {args.strength:g}, prompts the COCO detector covers ({', '.join(prompts)}); "
        f"readers trained on {args.count:,} challenges of the training pictures; {args.test_count:,} challenges "
        "in each pool",
        rows_are="attacker",
        columns_are="pictures",
        columns=["new pictures", "same pool"],
    )
    finding.run("run", wall_seconds=time.perf_counter() - start, note=trainings_note(timings))
    for reader, report in reports.items():
        result = next(iter(report["per_attacker"].values()))
        for style, r in (result.get("per_style") or {"grid3 (new pictures)": result}).items():
            column = "same pool" if style.endswith("(same pool)") else "new pictures"
            finding.add_attack(reader, column, {**r, "state": result["state"]}, "run", digits=1, interval_digits=1)
            low, high = r["captcha_accuracy_ci95"]
            print(f"{reader}, {column}: {r['captcha_accuracy']:.1%} ({low:.1%}-{high:.1%}), tile recall "
                  f"{r['tile_recall']:.1%}, precision {r['tile_precision']:.1%}", flush=True)  # fmt: skip
    print(finding.write())


if __name__ == "__main__":
    main()
