"""Audio CAPTCHAs, measured the way a researcher would run them, through the CLI:

1. `generation`: `spoken`, `continuous` and `distorted` (text) generated on 2 workers in the same
   run (challenges a second, 2,000 each of 6 digits, the whole command timed);
2. `attack`: audioctc fine-tuned from its shipped base on 6,000 `spoken` challenges at strength
   0.5, 6 digits, every voice, until it converges, then it and pocketsphinx (off the shelf) attack
   1,000 fresh ones (seed 10); `heldout`: two audioctc readers trained from scratch (the base
   heard every voice) on 6,000 challenges, one on the eSpeak voices alone, one on every voice,
   hear the recorded voice, which the first never heard;
3. `sweep`: both attackers over `spoken`'s strength, 0 to 1 in five steps, 300 a step;
4. `frontier` (after `attack`): the worked example of a site offering `distorted` at 0.5 and
   `spoken` at 0.5 as its audio alternative: `captchalab audit` of the visual design (quick), a
   dataset of each design (60 challenges) served by `captchalab humans` to SIMULATED participants,
   not people (24 of them, 15 challenges each, 3 answers per challenge; right with probability
   0.9 / 0.6 and solve times log-normal with medians 9.8 / 28.4 s for the visual / audio design,
   times near those Bursztein et al. 2010 report for image and audio CAPTCHAs: assumptions for
   the example, not measurements of people), then `captchalab frontier --alternative`.

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

from captchalab.serving import launch

PARTS = ("generation", "attack", "heldout", "sweep", "frontier")
TEST_SEED = 10  # the trainings draw with seeds 0 and 1; attacks and sweeps with seeds no training used
DESIGN = ("--style", "spoken", "--strength", 0.5, "--length", 6)


def from_scratch(work: Path, name: str, timings: dict, *params) -> Path:
    """audioctc on `spoken` at 0.5 from scratch: 6,000 challenges (seed 0), until it converges."""
    out = work / f"{name}-scratch.keras"
    train_once(out, timings, f"{name}, from scratch", "--attacker", "audioctc", *DESIGN, *params, "--workers", 2,
               "--count", 6000, "--from", "scratch")  # fmt: skip
    return out


def from_base(out: Path, timings: dict) -> None:
    """audioctc on `spoken` at 0.5 from its shipped base: 6,000 challenges (seed 0), until it converges."""
    train_once(out, timings, f"{out.stem}, from the base", "--attacker", "audioctc", *DESIGN, "--workers", 2,
               "--count", 6000)  # fmt: skip


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
        from_base(model, timings)

    if "attack" in parts:
        finding = Finding("audio", "Audio CAPTCHAs at strength 0.5",
                          "1,000 fresh `spoken` challenges of 6 digits at strength 0.5 (docs/audio.md defines it): "
                          "the whole answer right, single attempt, with its Wilson 95% interval; the share of "
                          "characters beside it. audioctc fine-tuned from its shipped base on 6,000 `spoken` "
                          "challenges at 0.5; pocketsphinx off the shelf, held to the digits' names.",
                          "the voices and attacker", "measure", ["answer right", "characters"])  # fmt: skip
        runs = [("every voice", work / "attack-spoken", (model,), ())]
        if "heldout" in parts:  # the recorded voice, never heard by a reader trained on eSpeak's
            heard = from_scratch(work, "audioctc-espeak", timings, "--param", "voices=espeak")
            every = from_scratch(work, "audioctc-spoken", timings)
            runs.append(
                ("the recorded voice", work / "attack-recorded", (heard, every), ("--param", "voices=recorded"))
            )
        for voices, out, models, params in runs:
            chosen = [a for m in models for a in ("--model", m)]
            result = attack_once(out, *chosen, "--attacker", "pocketsphinx", *DESIGN, *params, "--count", 1000,
                                 "--seed", TEST_SEED)  # fmt: skip
            for label, r in result["per_attacker"].items():
                print(result_line(label, r, f"right, characters {r['char_accuracy']:.1%}, {voices}"), flush=True)
                who = {"audioctc-spoken (audioctc)": "audioctc from its base",
                       "audioctc-spoken-scratch (audioctc)": "audioctc from scratch, every voice",
                       "audioctc-espeak-scratch (audioctc)": "audioctc from scratch, eSpeak's voices"}.get(label, label)  # fmt: skip
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
    if "frontier" in parts:
        print(frontier(work), flush=True)
    print(f"{time.perf_counter() - start:.0f} s in all", flush=True)


PEOPLE = {"distorted": (0.9, 9.8), "spoken": (0.6, 28.4)}  # SIMULATED: right with, median seconds


def said(row: dict) -> str:
    """The verdict on a frontier row's attacker success."""
    if row["attacker_lower_bound"]:
        return "not converged: a lower bound"
    return "every challenge passed" if row["attacker_success"] >= 1 else "converged"  # none does better


def frontier(work: Path) -> Path:
    """The visual design and its audio alternative on one frontier, people SIMULATED."""
    audit = work / "audit-distorted"
    if not (audit / "verdict.json").is_file():
        resume = ["--resume"] if (audit / "ladder" / "study.json").is_file() else []
        cli("audit", "--style", "distorted", "--budget", "quick", "--out", audit, *resume)
    folders = []
    for k, (style, extra) in enumerate((("distorted", ()), ("spoken", ("--length", 6)))):
        folder = work / "people" / style
        if not (folder / "labels.csv").is_file():
            cli("generate", "--style", style, "--strength", 0.5, *extra, "--count", 60, "--seed", 900 + k,
                "--out", folder, "--force")  # fmt: skip
        folders.append(folder)
    humans = work / "humans"
    if not (humans / "answers").is_dir():
        server, url = launch(
            ["humans", *[a for f in folders for a in ("--dataset", f)], "--out", humans, "--per-person", 15,
             "--practice", 1, "--answers-per-item", 3], "api/study")  # fmt: skip
        try:
            profiles = [a for f in folders for a in ("--profile", f"{f}:{PEOPLE[f.name][0]}:{PEOPLE[f.name][1]}")]
            cli("humans-simulate", "--url", url, *profiles, "--participants", 24, "--seed", 5)
        finally:
            server.terminate()
            server.wait(timeout=30)
    out = work / "frontier"
    cli("frontier", "--humans", humans, "--results", audit / "ladder", "--results", work / "attack-spoken",
        "--alternative", "distorted@0.5=spoken@0.5", "--out", out)  # fmt: skip
    report = json.loads((out / "report.json").read_text())
    finding = Finding("audio-frontier", "A visual design beside its audio alternative (people SIMULATED)",
                      "`distorted` at strength 0.5 and `spoken` at 0.5 (6 digits) as one site's visual CAPTCHA "
                      "and its audio alternative: the best attacker of each (the quick audit of `distorted`; "
                      "audioctc and pocketsphinx on `spoken`, docs/results/audio.md) and SIMULATED participants, "
                      "not people: right with probability 0.9 / 0.6, median times 9.8 / 28.4 s (assumptions, near "
                      "the times Bursztein et al. 2010 report for image and audio CAPTCHAs), 3 answers per challenge. The site accepts "
                      "either, so an attacker passes it as often as it passes the weaker.",
                      "the design", "measure", ["people (SIMULATED)", "median time", "best attacker"])  # fmt: skip
    for r in report["rows"]:
        finding.add(r["label"], "people (SIMULATED)", r["human_success"], "run", verdict="simulated people",
                    interval=r["human_success_ci95"], note=f"{r['human_answers']} answers")  # fmt: skip
        finding.add(r["label"], "median time", round(r["human_median_seconds"], 1), "run", unit="s")
        finding.add(r["label"], "best attacker", r["attacker_success"], "run", interval=r["attacker_success_ci95"],
                    verdict=said(r), note=r["best_attacker"])  # fmt: skip
    for a in report["alternatives"]:
        row = "the site with both (" + " or ".join(a["designs"]) + ")"
        finding.add(row, "best attacker", a["attacker_success"], "run", interval=a["attacker_success_ci95"],
                    verdict=said(a), note=f"through {a['weakest']} ({a['best_attacker']})")  # fmt: skip
    finding.run("run", note=str(out / "frontier.png"))
    return finding.write()


if __name__ == "__main__":
    main()
