"""Audio CAPTCHAs, measured the way a researcher would run them, through the CLI:

1. `generation`: `spoken`, `continuous` and `distorted` (text) generated on 2 workers in the same
   run (challenges a second, 2,000 each of 6 digits, the whole command timed);
2. `attack`: audioctc trained on `spoken` at strength 0.5, 6 digits, every voice (6,000
   challenges, then from that model on 12,000 others), then it and pocketsphinx (off the shelf)
   attack 1,000 fresh ones (seed 10); `heldout`: an audioctc trained the same way on the eSpeak
   voices alone hears the recorded voice, which it never heard;
3. `sweep`: both attackers over `spoken`'s strength, 0 to 1 in five steps, 300 a step.

Models and reports stay in --work, so a run again goes on where it stopped.

    python benchmarks/audio_captchas.py [--work results/audio] [--parts generation,attack,heldout,sweep]

It writes results/published/audio*.json (benchmarks/publish.py says how to publish them).
"""

import argparse
import json
import time
from pathlib import Path

from publish import Finding
from recipe_steps import attack_once, cli, generation_rate, result_line, train_once, trainings_note

PARTS = ("generation", "attack", "heldout", "sweep")
TEST_SEED = 10  # the trainings draw with seeds 0 and 1; attacks and sweeps with seeds no training used
DESIGN = ("--style", "spoken", "--strength", 0.5, "--length", 6)


def train_steps(work: Path, out: Path, timings: dict, *params) -> None:
    """audioctc on `spoken` at 0.5: 6,000 challenges (seed 0) for 150,000 examples, then from that
    model on 12,000 others (seed 1) for 200,000 more."""
    first = work / f"{out.stem}-first.keras"
    common = ["--attacker", "audioctc", *DESIGN, *params, "--workers", 2]
    train_once(first, timings, f"{out.stem}, first", *common, "--count", 6000, "--budget", 150000)
    train_once(out, timings, f"{out.stem}, then", *common, "--count", 12000, "--seed", 1, "--from", first,
               "--budget", 200000)  # fmt: skip


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--work", default="results/audio")
    parser.add_argument("--parts", default=",".join(PARTS))
    args = parser.parse_args()
    parts = args.parts.split(",")
    if set(parts) - set(PARTS):
        parser.error(f"--parts: choose among {','.join(PARTS)}")
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    timings, start = {}, time.perf_counter()

    if "generation" in parts:
        speed = Finding("audio-generation", "Generating audio CAPTCHAs", "`captchalab generate` of 2,000 challenges "
                        "of 6 digits on 2 workers at the default strength, the whole command timed, the audio styles "
                        "beside `distorted` text in the same run.", "the style", "measure",
                        ["challenges a second"])  # fmt: skip
        for style in ("spoken", "continuous", "distorted"):
            speed.add(
                style, "challenges a second", round(generation_rate(work, style, 2000, "--length", 6)), "run", unit="/s"
            )
        speed.run("run")
        print(speed.write())

    model = work / "audioctc-spoken.keras"
    if {"attack", "sweep"} & set(parts):
        train_steps(work, model, timings)

    if "attack" in parts:
        finding = Finding("audio", "Audio CAPTCHAs at strength 0.5",
                          "1,000 fresh `spoken` challenges of 6 digits at strength 0.5 (docs/audio.md defines it): "
                          "the whole answer right, single attempt, with its Wilson 95% interval; the share of "
                          "characters beside it. audioctc trained on `spoken` at 0.5 (6,000 challenges, then from "
                          "that model on 12,000 others); pocketsphinx off the shelf, held to the digits' names.",
                          "the voices and attacker", "measure", ["answer right", "characters"])  # fmt: skip
        runs = [("every voice", work / "attack-spoken", (model,), ())]
        if "heldout" in parts:  # the recorded voice, never heard by a reader trained on eSpeak's
            heard = work / "audioctc-espeak.keras"
            train_steps(work, heard, timings, "--param", "voices=espeak")
            runs.append(
                ("the recorded voice", work / "attack-recorded", (heard, model), ("--param", "voices=recorded"))
            )
        for voices, out, models, params in runs:
            chosen = [a for m in models for a in ("--model", m)]
            result = attack_once(out, *chosen, "--attacker", "pocketsphinx", *DESIGN, *params, "--count", 1000,
                                 "--seed", TEST_SEED)  # fmt: skip
            for label, r in result["per_attacker"].items():
                print(result_line(label, r, f"right, characters {r['char_accuracy']:.1%}, {voices}"), flush=True)
                who = {"audioctc-spoken (audioctc)": "audioctc trained on every voice",
                       "audioctc-espeak (audioctc)": "audioctc trained on eSpeak's voices"}.get(label, label)  # fmt: skip
                row = f"{voices}, {who}"
                said = finding.add_attack(row, "answer right", r, "run", digits=1, interval_digits=1)
                finding.add(row, "characters", r["char_accuracy"], "run", verdict=said, digits=1)
        finding.run("run", note=trainings_note(timings))
        print(finding.write())

    if "sweep" in parts:
        finding = Finding("audio-strength", "Audio CAPTCHAs over strength",
                          "audioctc (trained on `spoken` at strength 0.5) and pocketsphinx on 300 fresh `spoken` "
                          "challenges of 6 digits at each strength: the whole answer right, with its Wilson 95% "
                          "interval.", "the strength", "attacker", ["audioctc", "pocketsphinx"])  # fmt: skip
        sweep = work / "sweep-spoken"
        if not (sweep / "report.json").is_file():
            cli("sweep", "--model", model, "--attacker", "pocketsphinx", "--style", "spoken", "--length", 6,
                "--strength", "0:1:5", "--count", 300, "--seed", TEST_SEED + 1, "--out", sweep, "--force")  # fmt: skip
        report = json.loads((sweep / "report.json").read_text())
        for step in report["steps"]:
            for label, r in step["per_attacker"].items():
                column = "audioctc" if "audioctc" in label else label
                finding.add_attack(f"`spoken` at {step['value']}", column, r, "run", digits=1, interval_digits=1)
                print(f"spoken at {step['value']}: {label} {r['captcha_accuracy']:.1%}", flush=True)
        finding.run("run", note=str(sweep))
        print(finding.write())
    print(f"{time.perf_counter() - start:.0f} s in all", flush=True)


if __name__ == "__main__":
    main()
