"""Cost against the size of the work: generate, attack and score 10,000, 100,000 and 1,000,000
text CAPTCHAs (`distorted` at 0.5, four to six digits) with ctc (the shipped base, read as it
is: throughput and memory are the question here, not accuracy) and ddddocr (up to 100,000: it
reads about 120 a second), and 10,000 and 100,000 `grid3` challenges with tilecnn (trained
once on 3,000 others). Each step is a whole `captchalab` command in its own process tree: its
wall time, the CPU time of all its processes (less moved than the wall time by other load on the machine), and
the peak resident memory of its largest process (the driver, where anything that grows with the
work would show; worker processes are each measured too, and the largest counts). The results
file plots time and peak memory against the size.

Resumable: a step whose output exists is read back from --work (datasets, reports, and
scale.json with every measurement so far), so the million-CAPTCHA steps can be spread over
sessions. A million text CAPTCHAs fill about 10 GB of disk (small files: a block each, mostly).

    python benchmarks/scale.py [--work results/scale] [--sizes 10000,100000,1000000] [--parts text,ddddocr,grid3]

It writes results/published/scale.json (benchmarks/publish.py says how to publish it).
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from publish import REPO, Finding
from recipe_steps import train_once

# runs one command and prints the largest peak RSS among all its processes (KiB), the CPU time all
# of them used (s) and its exit code. Worker pools start from a forkserver that the command never
# waits for; as a child subreaper (Linux) this process inherits such orphans and reaps them, so their
# CPU time and memory are counted too.
MEASURE = """
import ctypes, os, resource, subprocess, sys
ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
done = subprocess.run(sys.argv[1:])
while True:
    try:
        os.wait()
    except ChildProcessError:
        break
used = resource.getrusage(resource.RUSAGE_CHILDREN)
print(used.ru_maxrss, used.ru_utime + used.ru_stime, done.returncode)
"""
BASE = REPO / "captchalab" / "bases" / "ctc-digits.keras"
LIMITS = {"ddddocr": 100_000, "grid3": 100_000}


def measured(*args) -> dict:
    """`captchalab ARGS` in a process tree of its own: seconds, CPU seconds and peak RSS (MB), or exit
    with its error."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, sys.executable, "-m", "captchalab", *map(str, args)],
        capture_output=True,
        text=True,
    )
    peak, cpu, code = done.stdout.split()[-3:]
    if int(code):
        sys.exit(f"failed: captchalab {' '.join(map(str, args))}\n{done.stderr[-2000:]}")
    return {"seconds": round(time.perf_counter() - start, 1), "cpu_seconds": round(float(cpu), 1),
            "peak_mb": round(int(peak) / 1024)}  # fmt: skip


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--work", default="results/scale")
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--parts", default="text,ddddocr,grid3")
    args = parser.parse_args()
    work, sizes, parts = Path(args.work), [int(s) for s in args.sizes.split(",")], args.parts.split(",")
    work.mkdir(parents=True, exist_ok=True)
    log = work / "scale.json"
    steps = json.loads(log.read_text()) if log.is_file() else {}

    def step(name: str, *command) -> dict:
        if name not in steps:
            steps[name] = measured(*command)
            log.write_text(json.dumps(steps, indent=2))
        done = steps[name]
        print(
            f"{name}: {done['seconds']:.0f} s, {done['cpu_seconds']:.0f} s of CPU, peak {done['peak_mb']} MB",
            flush=True,
        )
        return steps[name]

    grid_model = work / "tilecnn-grid3.keras"
    if "grid3" in parts:
        train_once(grid_model, {}, "tilecnn on grid3", "--attacker", "tilecnn", "--style", "grid3", "--count", 3000,
                   "--workers", 2)  # fmt: skip
    finding = Finding("scale", "Cost against the size of the work",
                      "Each step one whole `captchalab` command on 2 workers: its wall time, the CPU time of "
                      "all its processes per item, and the peak resident memory of its largest process. Text: `distorted` at 0.5, four to six digits, "
                      "read by the shipped ctc base as it is and by ddddocr off the shelf; grids: `grid3` at 0.5 "
                      "read by tilecnn (trained on 3,000 others).", "the step and the size", "measure",
                      ["seconds", "per second", "CPU ms each", "peak memory"])  # fmt: skip
    finding.run("run")
    series: dict[str, dict] = {}  # each step's rows by size, for the plots
    for size in sizes:
        text = work / f"text-{size}"
        jobs = []
        if "text" in parts or "ddddocr" in parts:
            jobs.append((f"generate text {size}", ("generate", "--style", "distorted", "--length", "4-6", "--count",
                         size, "--workers", 2, "--seed", 1, "--out", text, "--force")))  # fmt: skip
        if "text" in parts:
            jobs.append((f"attack ctc {size}", ("attack", "--model", BASE, "--dataset", text, "--workers", 2,
                         "--out", work / f"ctc-{size}", "--force")))  # fmt: skip
        if "ddddocr" in parts and size <= LIMITS["ddddocr"]:
            jobs.append((f"attack ddddocr {size}", ("attack", "--attacker", "ddddocr", "--dataset", text, "--workers",
                         2, "--out", work / f"ddddocr-{size}", "--force")))  # fmt: skip
        if "grid3" in parts and size <= LIMITS["grid3"]:
            grid = work / f"grid3-{size}"
            jobs.append((f"generate grid3 {size}", ("generate", "--style", "grid3", "--count", size, "--workers", 2,
                         "--seed", 1, "--out", grid, "--force")))  # fmt: skip
            jobs.append((f"attack tilecnn {size}", ("attack", "--model", grid_model, "--dataset", grid, "--workers",
                         2, "--out", work / f"tilecnn-{size}", "--force")))  # fmt: skip
        for name, command in jobs:
            found = step(name, *command)
            row = f"{name.rsplit(' ', 1)[0]}, {size:,}"
            series.setdefault(name.rsplit(" ", 1)[0], {})[size] = row
            finding.add(row, "seconds", found["seconds"], "run", unit="s")
            finding.add(row, "per second", round(size / found["seconds"]), "run", unit="/s")
            finding.add(row, "CPU ms each", round(1000 * found["cpu_seconds"] / size, 2), "run", unit="ms")
            finding.add(row, "peak memory", found["peak_mb"], "run", unit="MB")
    finding.plot("Time against the work", "CAPTCHAs or challenges", "seconds, the whole command", "seconds", series)
    finding.plot(
        "Peak memory against the work", "CAPTCHAs or challenges", "MB, the largest process", "peak memory", series
    )
    print(finding.write())


if __name__ == "__main__":
    main()
