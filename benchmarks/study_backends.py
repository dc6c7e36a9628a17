"""A 12-cell study (2 styles x 3 strengths x 2 shared attackers, 1,000 test CAPTCHAs a cell) on
the local backend and on a local Ray cluster, in the same run: wall time of each whole command,
and whether every accuracy is identical.

    python benchmarks/study_backends.py --segment models/segment-distorted.keras --ctc models/ctc-distorted.keras

It writes results/published/study-backends.json (benchmarks/publish.py says how to publish it).
"""

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from publish import Finding


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--segment", required=True)
    parser.add_argument("--ctc", required=True)
    parser.add_argument("--count", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        study = tmp / "twelve.toml"
        study.write_text(
            textwrap.dedent(f'''
            [study]
            name = "twelve cells"
            seed = 12
            test_count = {args.count}
            [grid]
            style = ["distorted", "noisy"]
            strength = [0.0, 0.5, 1.0]
            [[attacker]]
            label = "segment"
            model = "{Path(args.segment).resolve()}"
            [[attacker]]
            label = "ctc"
            model = "{Path(args.ctc).resolve()}"
        ''')
        )
        seconds, rows = {}, {}
        for backend in ("local", "ray"):
            start = time.perf_counter()
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "captchalab",
                    "run",
                    str(study),
                    "--backend",
                    backend,
                    "--out",
                    str(tmp / backend),
                ],
                check=True,
                capture_output=True,
            )
            seconds[backend] = time.perf_counter() - start
            rows[backend] = [
                {k: r[k] for k in ("cell", "attacker", "captcha_accuracy", "char_accuracy")}
                for r in json.loads((tmp / backend / "cells.json").read_text())
            ]
            print(f"--backend {backend}: {seconds[backend]:.1f} s for {len(rows[backend])} cell results", flush=True)
        same = rows["local"] == rows["ray"]
        print(f"ray / local = {seconds['ray'] / seconds['local']:.2f}; identical accuracies: {same}")
    finding = Finding(
        "study-backends",
        "A 12-cell study, locally and on a local Ray instance",
        "2 styles x 3 strengths x 2 shared attackers, 1,000 test CAPTCHAs a cell; the whole command's wall time.",
        "the backend",
        "backend",
        ["wall time"],
    )
    for backend, wall in seconds.items():
        finding.add(f"`--backend {backend}`", "wall time", round(wall, 1), "run", unit="s")
    finding.run("run", note="identical accuracies from both backends" if same else "the accuracies DIFFER")
    print(finding.write())


if __name__ == "__main__":
    main()
