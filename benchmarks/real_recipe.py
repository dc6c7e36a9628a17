"""The synthetic-then-real recipe on a stand-in for a scraped corpus, run the way a researcher
would, through the CLI:

1. the "real" corpus: 1,400 six-character CAPTCHAs of lower-case letters and digits from
   plugins/serif_line.py with variant=1 (another face, slant, background, lines and JPEG than the
   synthetic style), split 1,000 for training / 400 for testing;
2. each attacker trained on 20,000 synthetic CAPTCHAs of the resembling style (variant=0),
   segment starting from the `train chars` network, ctc from scratch;
3. each fine-tuned on the 1,000 "real" ones (`train captcha --dataset ... --from synthetic.keras`);
4. both attack the 400, beside ddddocr off the shelf and each attacker trained on the 1,000 alone;
5. few labels: ctc fine-tuned from the synthetic stage on the first 100 of the 1,000 only, and on
   those 100 plus the other 900 unlabelled (`--unlabelled`, pseudo-labels from a mean teacher).

Every step runs with the defaults (no epochs or rates chosen here): attackers start from their
base and train until they converge. Each model is kept in --work, so an interrupted run goes on
where it stopped.

    python benchmarks/real_recipe.py [--synthetic 20000] [--work results/real-recipe]
"""
import argparse
import csv
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
PLUGINS = HERE / "plugins"


def cli(*args):
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "captchalab", *map(str, args)], capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"failed: captchalab {' '.join(map(str, args))}\n{done.stderr}")
    return time.perf_counter() - start


def split(folder: Path, train: Path, test: Path, count: int) -> None:
    rows = list(csv.reader((folder / "labels.csv").open()))[1:]
    for target, part in ((train, rows[:count]), (test, rows[count:])):
        target.mkdir(parents=True, exist_ok=True)
        for name, _ in part:
            shutil.copy(folder / name, target / name)
        with (target / "labels.csv").open("w") as f:
            f.write("filename,text\n" + "".join(f"{n},{t}\n" for n, t in part))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--synthetic", type=int, default=20000)
    parser.add_argument("--work", default="results/real-recipe")
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    common = ["--plugins", PLUGINS, "--charset", "alnum"]
    if not (work / "real-test").is_dir():
        cli("generate", "--style", "serif_line", *common, "--length", "6", "--count", 1400, "--seed", 77,
            "--param", "variant=1", "--strength", 0.6, "--workers", 2, "--out", work / "real", "--force")
        split(work / "real", work / "real-train", work / "real-test", 1000)
    timings = {}
    for attacker, start in (("segment", "base"), ("ctc", "base")):
        synthetic = work / f"{attacker}-synthetic.keras"
        if not synthetic.is_file():
            timings[f"{attacker} synthetic"] = cli(
                "train", "captcha", "--attacker", attacker, "--style", "serif_line", *common, "--length", "6",
                "--count", args.synthetic, "--strength", 0.6, "--from", start, "--out", synthetic)
        tuned = work / f"{attacker}-tuned.keras"
        if not tuned.is_file():
            timings[f"{attacker} fine-tune"] = cli("train", "captcha", "--attacker", attacker, "--dataset",
                                                   work / "real-train", "--charset", "alnum", "--from", synthetic,
                                                   "--out", tuned)
        alone = work / f"{attacker}-real-only.keras"
        if not alone.is_file():
            timings[f"{attacker} real only"] = cli("train", "captcha", "--attacker", attacker, "--dataset",
                                                   work / "real-train", "--charset", "alnum", "--from", start,
                                                   "--out", alone)
    few, scraped = work / "real-100", work / "real-900-unlabelled"
    if not scraped.is_dir():
        split(work / "real-train", few, scraped, 100)
        (scraped / "labels.csv").unlink()  # unlabelled: the images only
    for name, extra in (("ctc-100", []), ("ctc-100-plus-900-unlabelled", ["--unlabelled", scraped])):
        model = work / f"{name}.keras"
        if not model.is_file():
            timings[name] = cli("train", "captcha", "--attacker", "ctc", "--dataset", few, "--charset", "alnum",
                                "--from", work / "ctc-synthetic.keras", *extra, "--out", model)
    models = [work / f"{a}-{k}.keras" for a in ("segment", "ctc") for k in ("tuned", "real-only", "synthetic")]
    models += [work / "ctc-100.keras", work / "ctc-100-plus-900-unlabelled.keras"]
    report = work / "attack"
    cli("attack", *[x for m in models for x in ("--model", m)], "--attacker", "ddddocr", "--dataset",
        work / "real-test", "--charset", "alnum", "--out", report, "--force")
    result = json.loads((report / "report.json").read_text())
    for name, seconds in timings.items():
        print(f"{name}: {seconds:.0f} s")
    for label, r in result["per_attacker"].items():
        low, high = r["captcha_accuracy_ci95"]
        bound = " (a lower bound: " + "; ".join(r["state"]["reasons"]) + ")" if r["state"]["lower_bound"] else ""
        print(f"{label}: CAPTCHA accuracy {r['captcha_accuracy']:.2%} ({low:.1%}-{high:.1%}), character accuracy "
              f"{r['char_accuracy']:.2%} on the 400 stand-in real CAPTCHAs{bound}")


if __name__ == "__main__":
    main()
