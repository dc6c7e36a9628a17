"""The human-study page under load: N simulated participants at once (each fetching an item and
answering it in turn, as fast as the server lets them) on a real `captchalab humans` server over
loopback, three kinds mixed, beside one participant alone in the same run; prints answers per
second and checks that none was lost.

    python benchmarks/human_page_load.py [--participants 20] [--per-person 25] [--work results/human-load]

It writes results/published/human-page-load.json (benchmarks/publish.py says how to publish it).
"""

import argparse
import shutil
import time
from pathlib import Path

from captchalab.data.dataset import GenerationSpec, generate_dataset
from captchalab.humans.records import load_answers
from captchalab.humans.simulate import Profile, simulate
from captchalab.serving import launch
from publish import Finding

FINDING = Finding(
    "human-page-load",
    "The human-study page under load",
    "Simulated participants answering as fast as "
    "a real `captchalab humans` server over loopback lets them, three kinds mixed.",
    "participants at once",
    "participants",
    ["answers/s", "answers lost"],
)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--participants", type=int, default=20)
    parser.add_argument("--per-person", type=int, default=25)
    parser.add_argument("--work", default="results/human-load")
    args = parser.parse_args()
    work = Path(args.work)
    datasets = []
    for style, count in (("distorted", 200), ("grid3", 100), ("slider", 100)):
        folder = work / style
        if not (folder / "labels.csv").is_file():
            generate_dataset(GenerationSpec(style, count, seed=7), folder, force=True)
        datasets.append(folder)
    for participants in (1, args.participants):  # one alone first: the baseline of the same run
        study = work / f"study-{participants}"
        shutil.rmtree(study, ignore_errors=True)
        server, url = launch(
            [
                "humans",
                *[a for d in datasets for a in ("--dataset", d)],
                "--out",
                study,
                "--per-person",
                args.per_person,
                "--practice",
                1,
                "--answers-per-item",
                3,
            ],
            "api/study",
        )
        try:
            start = time.perf_counter()
            done = simulate(url, [Profile(d, 0.9, 3.0) for d in datasets], participants, seed=1)
            took = time.perf_counter() - start
        finally:
            server.terminate()
            server.wait(timeout=30)
        sent = sum(d["answers"] for d in done)
        refused = sum(d["refused"] for d in done)
        recorded, skipped = load_answers(study)
        print(
            f"{participants} participant{'s' if participants > 1 else ''} at once: {sent} answers in {took:.1f} s "
            f"({sent / took:.0f} answers/s, each after fetching its item); refused {refused}; recorded "
            f"{len(recorded)}{' (none lost)' if len(recorded) == sent - refused else ' (ANSWERS LOST)'}; "
            f"skipped lines {skipped or 'none'}"
        )
        row = f"{participants} at once"
        FINDING.add(row, "answers/s", round(sent / took), "run", unit="answers/s", note=f"{sent} answers")
        FINDING.add(row, "answers lost", sent - refused - len(recorded), "run", unit="answers")
    FINDING.run("run")
    print(FINDING.write())


if __name__ == "__main__":
    main()
