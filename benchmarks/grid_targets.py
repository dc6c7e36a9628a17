"""Image-selection CAPTCHAs, measured the way docs/grids.md reports them, through the CLI with every
default (attackers train until they converge). Models and reports stay in --work: run it again to
go on where it stopped.

1. generation speed: 1,000 grid3 and grid4 challenges on 2 workers, beside 1,000 text CAPTCHAs
   (clean) in the same run;
2. tilecnn trained on 5,000 grid3 challenges and squares on 5,000 grid4 ones, at strength 0.5
   from every art style, each attacking 1,000 fresh ones; the attack speed beside the network's
   own ceiling (challenges/s through the bare network: 9 tiles, or one whole 4x4 scene); then
   squares trained on from there on 5,000 fresh grid4 challenges every epoch;
3. the held-out art style: for each art style, tilecnn trained on 3,000 challenges of the other
   three, attacking 1,000 of the held-out one (tile accuracy and challenge success), as it is,
   with colour augmentation (colour=1), and with outline augmentation too (outline=1);
4. the transfer matrix train-art x test-art (3,000 training challenges per art, 500 per cell);
5. a strength sweep of the grid3 attacker;
more-art: the held-out art style again, with four more openly licensed emoji sets (not shipped) in
training beside the other built-in three;
shapes: held-out openmoji (the style the others miss) read by readers pushed towards shapes over
palettes: random convolutions (randconv=1) on top of colour and outline augmentation, the same
two and four times as wide (width=2, 4), and the same with the more-art drawings; then the wide
reader with held-out twemoji (a filled style);
flips: the shapes step's readers reading the same held-out challenges once and with each tile's
mirror image too;
every-class: the wide readers of shapes (width=2, randconv; with more art, width=4 too), held-out
openmoji, trained on every tile's class where the challenges record it and reading each tile
with its mirror image (every_class, flips: the defaults since); held-out, more-art and shapes
pin both off, as they were measured;
every-class-seeds: the wide more-art reader of every-class from seed 2, with every_class on and
off;
most-art: every-class's wide reader, held-out openmoji, with three more openly licensed sets in
training (MOST_ART: an outlined hand-drawn one among them), from seeds 1 and 2;
ensemble: most-art's two readers as one model averaging their scores (captchalab ensemble);
unlabelled: the every-class and most-art readers trained on from their models with 1,000 unlabelled
held-out openmoji challenges (images alone, not those attacked) beside their labelled ones;
coverage: where the grid4 reader errs, by how much of each square the object covers (the answer
counts a square from 5%), on the same 1,000 fresh challenges it attacked;
areas: the 4x4 reader that learns each square's coverage from the map generated challenges
record (areas), trained on the same 5,000 grid4 challenges, attacking the same 1,000, and where it
errs, as for coverage;
areas-variants: the same, changing one thing each: its input (`tile=64`, 256x256 pixels), its
data (5,000 fresh challenges every epoch), or its data and budget (20,000 challenges, 400,000 seen,
then on from that model for 152,000 more at half the rate, and again at a quarter);
selection: every areas model in --work, selecting the likeliest set given the answer sizes or by
its coverage estimate against the threshold (its default), on the same probabilities;
count: the grid3 reader (trained on the fixed three targets) on 500 fresh challenges of that
design and of one that draws 2 to 5 targets (max_targets), selecting the likeliest set or by
threshold.

    python benchmarks/grid_targets.py [--work results/grid-targets] [--steps speed,grid,coverage,areas,areas-variants,selection,count,held-out,more-art,shapes,flips,every-class,every-class-seeds,most-art,ensemble,unlabelled,matrix,sweep]

The attacks it reports (one row each) and its generation speeds go into
results/published/grid-targets.json (benchmarks/publish.py says how to publish it).
"""

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from publish import Finding
from recipe_steps import cli, generation_rate, result_line, train_once, trainings_note

ARTS = ["noto", "twemoji", "openmoji", "fluent"]
STEPS = (
    "speed",
    "grid",
    "coverage",
    "areas",
    "areas-variants",
    "selection",
    "count",
    "held-out",
    "more-art",
    "shapes",
    "flips",
    "every-class",
    "every-class-seeds",
    "most-art",
    "ensemble",
    "unlabelled",
    "matrix",
    "sweep",
)
# openly licensed emoji sets not shipped (tools/render_tile_art.py EXTRA_STYLES), and the built-in
# style each redraws (left out with it: the same designs in other colours would leak it)
MORE_ART = {"emojione": None, "emojione-monotone": None, "noto-v1": "noto", "fluent-high-contrast": "fluent"}
# three more: an outlined hand-drawn set, Firefox OS's, and Fluent's gradient one
MOST_ART = {**MORE_ART, "streamline": None, "fxemoji": None, "fluent-colour": "fluent"}
AREAS_VARIANTS = (  # from the defaults: its input; its data; its data and how long it may train
    ("areas tile=64 on grid4", "areas64-grid4.keras", ("--hparam", "tile=64")),
    ("areas on fresh grid4 every epoch", "areas-fresh-grid4.keras", ("--fresh",)),
    ("areas on 20,000 grid4, budget 400,000", "areas-20k-grid4.keras", ("--count", 20000, "--budget", 400000)),
)
# the tile readers as the held-out steps measured them, before every_class and flips were defaults
AS_MEASURED = ("--hparam", "every_class=false", "--hparam", "flips=false")
# the shapes step's augmentation (shapes over palettes), and every-class's wide reader with it
SHAPES_AUGMENT = ("--hparam", "colour=1", "--hparam", "outline=1", "--hparam", "randconv=1")
WIDE_EVERY_CLASS = (*SHAPES_AUGMENT, "--hparam", "width=2", "--hparam", "every_class=true", "--hparam", "flips=true")
BINS = (0.0, 0.001, 0.02, 0.05, 0.1, 0.2, 1.01)  # square coverage: none, a sliver, near the 5% line, more


def attack(model: Path, out: Path, *style) -> dict:
    if not (out / "report.json").is_file():
        cli("attack", "--model", model, *style, "--count", 1000, "--seed", 901, "--out", out, "--force")
    return json.loads((out / "report.json").read_text())


def ceiling(model: Path, per_challenge: int) -> float:
    """Challenges per second through the bare network (`per_challenge` inputs each, in batches of
    about 1,024 32x32 tiles' worth of pixels), the reader's upper bound."""
    import numpy as np
    from captchalab.attackers.base import load_attacker

    reader = load_attacker(model)
    inputs = np.random.default_rng(0).random((1024 * per_challenge, *reader.model.input_shape[1:]), np.float32)
    reader.input_logits(inputs[:per_challenge])
    start = time.perf_counter()
    reader.input_logits(inputs)
    return len(inputs) / per_challenge / (time.perf_counter() - start)


FINDING = Finding(
    "grid-targets",
    "Image grids, as benchmarks/grid_targets.py measured them",
    "Each row one attack of this run, on 1,000 fresh challenges (seed 901) unless it says otherwise: success with its "
    "Wilson 95% interval, lenient success (one tile or square wrong allowed) and tile accuracy; and the speeds it took.",
    "the attack",
    "attack",
    ["solved", "lenient", "tile accuracy", "speed"],
)


def line(label: str, r: dict) -> str:
    """An attack's result in one line, recorded in FINDING too."""
    said = FINDING.add_attack(label, "solved", r, "run")
    FINDING.add(label, "lenient", r["lenient_accuracy"], "run", verdict=said)
    FINDING.add(label, "tile accuracy", r["char_accuracy"], "run", verdict=said)
    return result_line(
        label,
        r,
        f"success, lenient {r['lenient_accuracy']:.2%}, tile accuracy "
        f"{r['char_accuracy']:.2%}, {r['captchas_per_second']:.0f} challenges/s",
    )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--work", default="results/grid-targets")
    parser.add_argument("--steps", default=",".join(STEPS), help="which steps, separated by commas")
    args = parser.parse_args()
    steps = args.steps.split(",")
    if set(steps) - set(STEPS):
        parser.error(f"unknown steps {sorted(set(steps) - set(STEPS))}; known: {', '.join(STEPS)}")
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    timings = {}
    for step in STEPS:
        if step in steps:
            globals()[step.replace("-", "_")](work, timings)
    for name, seconds in timings.items():
        print(f"{name}: {seconds:.0f} s", flush=True)
    FINDING.run("run", note=f"steps {', '.join(steps)}; {trainings_note(timings)}")
    print(FINDING.write(), flush=True)


def speed(work: Path, timings: dict):
    for style in ("clean", "grid3", "grid4"):
        rate = generation_rate(work, style)
        FINDING.add(
            f"generate `{style}`, 2 workers (the whole command)", "speed", round(rate), "run", unit="per second"
        )


def grid(work: Path, timings: dict):
    for style, reader, per_challenge in (("grid3", "tilecnn", 9), ("grid4", "squares", 1)):
        model = work / f"{reader}-{style}.keras"
        train_once(model, timings, f"{reader} on {style}", "--style", style, "--attacker", reader, "--count", 5000)
        result = attack(model, work / f"attack-{reader}-{style}", "--style", style)
        print(line(f"{reader} on {style}, strength 0.5", result), flush=True)
        print(f"  the network's ceiling: {ceiling(model, per_challenge):.0f} challenges/s", flush=True)
    # squares overfits 5,000 challenges (89% of them read, 59% of its validation ones): go on from
    # it on 5,000 new ones every epoch
    model = work / "squares-grid4-fresh.keras"
    train_once(
        model,
        timings,
        "squares on fresh grid4",
        "--style",
        "grid4",
        "--attacker",
        "squares",
        "--count",
        5000,
        "--fresh",
        "--from",
        work / "squares-grid4.keras",
    )
    print(
        line(
            "squares on fresh grid4, strength 0.5",
            attack(model, work / "attack-squares-grid4-fresh", "--style", "grid4"),
        ),
        flush=True,
    )


def coverage(work: Path, timings: dict, model: str = "squares-grid4.keras"):
    import numpy as np
    from captchalab.attackers.base import load_attacker
    from captchalab.data.dataset import GenerationSpec, Source

    reader = load_attacker(work / model)
    source = Source(spec=GenerationSpec("grid4", 1000, seed=901, strength=0.5))
    shares, wrong, failed_near_line = [], [], 0
    for first in range(0, len(source), 100):
        samples = [source.sample(i) for i in range(first, first + 100)]
        readings = reader.read_prepared([reader.prepare(s.image, s.question) for s in samples])
        for s, r in zip(samples, readings):
            c = np.array(s.details["coverage"])
            miss = np.isin(np.arange(16), [int(i) for i in s.text.split()]) != np.isin(
                np.arange(16), [int(i) for i in r.text.split()]
            )
            shares.append(c)
            wrong.append(miss)
            failed_near_line += bool(miss.any() and ((c[miss] >= 0.02) & (c[miss] < 0.1)).all())
    shares, wrong = np.concatenate(shares), np.concatenate(wrong)
    print(
        f"{reader.name} on grid4: {1 - wrong.reshape(-1, 16).any(axis=1).mean():.1%} solved; squares read wrong, "
        "by the share of the square the object covers:",
        flush=True,
    )
    for low, high in zip(BINS, BINS[1:]):
        inside = (shares >= low) & (shares < high)
        print(
            f"  {low:.3f}-{min(high, 1):.3f}: {inside.sum() / 1000:.2f} a challenge, "
            f"{wrong[inside].mean():.1%} of them wrong",
            flush=True,
        )
    failures = int(wrong.reshape(-1, 16).any(axis=1).sum())
    print(f"  {failed_near_line} of the {failures} failed challenges erred only on squares covered 2-10%", flush=True)
    # how exactly a reader must judge the area: one that errs by a normal error of `points` of a
    # square's area on these very challenges
    truth, rng = shares >= 0.05, np.random.default_rng(0)
    for points in (0.5, 1, 2, 3):
        judged = shares + rng.normal(0, points / 100, shares.shape) >= 0.05
        solved = (judged == truth).reshape(-1, 16).all(axis=1).mean()
        print(
            f"  a reader judging each square's area within {points} points (one sd) would solve {solved:.1%}",
            flush=True,
        )


def areas(work: Path, timings: dict):
    areas_model(work, timings, "areas on grid4", "areas-grid4.keras")


def areas_variants(work: Path, timings: dict):
    for label, name, args in AREAS_VARIANTS:
        areas_model(work, timings, label, name, *args)
    # the 20,000 run ended at its budget while improving: on from it (a fine-tune, at half the rate)
    areas_model(
        work,
        timings,
        "areas on from there, 152,000 more",
        "areas-20k-on-grid4.keras",
        "--count",
        20000,
        "--budget",
        152000,
        "--from",
        work / "areas-20k-grid4.keras",
    )
    # best at its 6th of 8 epochs: on again at a quarter of the first rate, cut further on plateaus
    areas_model(
        work,
        timings,
        "areas on again at a quarter of the rate, up to 300,000 more",
        "areas-20k-on2-grid4.keras",
        "--count",
        20000,
        "--budget",
        300000,
        "--learning-rate",
        0.00025,
        "--from",
        work / "areas-20k-on-grid4.keras",
    )


def areas_model(work: Path, timings: dict, label: str, name: str, *args):
    """areas trained on the 5,000 grid4 challenges (or as `args` say), attacking the 1,000, and where it errs."""
    model = work / name
    count = () if "--count" in args else ("--count", 5000)
    train_once(model, timings, label, "--style", "grid4", "--attacker", "areas", *count, *args)
    print(line(f"{label}, strength 0.5", attack(model, work / f"attack-{model.stem}", "--style", "grid4")), flush=True)
    coverage(work, timings, model.name)


def solved_both_ways(reader, samples) -> dict[bool, int]:
    """How many of `samples` a grid reader solves selecting its likeliest set (sizes=true) and by
    threshold (sizes=false), from the same prepared inputs."""
    prepared = [reader.prepare(s.image, s.question) for s in samples]
    solved = {}
    for sizes in (True, False):
        reader.hparams["sizes"] = sizes
        solved[sizes] = sum(r.text == s.text for r, s in zip(reader.read_prepared(prepared), samples))
    return solved


def selection(work: Path, timings: dict):
    """Every areas model in `work` read both ways from the same probabilities: the likeliest set
    given the sizes its training answers had (sizes=true) and every square whose estimated coverage
    reaches the answer's threshold (sizes=false, areas' default since this chose it), on 2,000
    fresh grid4 challenges (seed 555, which chose it) and on the 1,000 of every 4x4 row (seed 901)."""
    from captchalab.attackers.base import load_attacker
    from captchalab.data.dataset import GenerationSpec, Source
    from captchalab.score import wilson

    for seed, n in ((555, 2000), (901, 1000)):
        source = Source(spec=GenerationSpec("grid4", n, seed=seed, strength=0.5))
        samples = [source.sample(i) for i in range(n)]
        for model in sorted(work.glob("areas*-grid4.keras")):
            solved = solved_both_ways(load_attacker(model), samples)
            for rule, sizes in (("the likeliest set", True), ("by threshold", False)):
                low, high = wilson(solved[sizes], n)
                print(
                    f"{model.stem} on {n:,} grid4 (seed {seed}) selecting {rule}: {solved[sizes] / n:.1%} "
                    f"({low:.1%}-{high:.1%})",
                    flush=True,
                )


def count(work: Path, timings: dict):
    from captchalab.attackers.base import load_attacker
    from captchalab.data.dataset import GenerationSpec, Source

    reader = load_attacker(work / "tilecnn-grid3.keras")
    for design, params in (("targets=3", {}), ("targets=2, max_targets=5", {"targets": 2, "max_targets": 5})):
        source = Source(spec=GenerationSpec("grid3", 500, seed=903, strength=0.5, params=params))
        solved = solved_both_ways(reader, [source.sample(i) for i in range(500)])
        for rule, sizes in (("the likeliest set", True), ("every tile at or above 0.5", False)):
            print(
                f"grid3 {design}, tilecnn trained on three targets selecting {rule}: {solved[sizes] / 500:.1%}",
                flush=True,
            )


def read_held_out(work: Path, timings: dict, held: str, name: str, data: str, trained_on: str, *hparams):
    """tilecnn trained once (tilecnn-NAMEwithout-HELD.keras) on 3,000 grid3 challenges drawn by
    `data` (`art=...` or `tiles=...`) with `hparams`, attacking 1,000 of the held-out art style."""
    model = work / f"tilecnn-{name}without-{held}.keras"
    train_once(
        model, timings, f"tilecnn {name}without {held}", "--style", "grid3", "--param", data, "--count", 3000, *hparams
    )
    result = attack(model, work / f"attack-{name}held-out-{held}", "--style", "grid3", "--param", f"art={held}")
    augmented = "".join(
        f", {value}" if option == "--hparam" else f", {option[2:]}={value}"
        for option, value in zip(hparams[::2], hparams[1::2])
    )
    print(line(f"held-out art {held} (trained on {trained_on}{augmented})", result), flush=True)


def held_out(work: Path, timings: dict):
    for held in ARTS:
        others = "+".join(a for a in ARTS if a != held)
        for name, hparams in (
            ("", ()),
            ("colour-", ("--hparam", "colour=1")),
            ("outline-", ("--hparam", "colour=1", "--hparam", "outline=1")),
        ):
            read_held_out(work, timings, held, name, f"art={others}", others, *hparams, *AS_MEASURED)


def more_art_folder(work: Path, held: str, sets: dict = MORE_ART, name: str = "more-art") -> tuple[Path, list]:
    """A tile folder of every built-in style but `held` and the `sets` that do not redraw it
    (rendered once by tools/render_tile_art.py: needs npm and resvg-py), and its styles."""
    styles = [a for a in ARTS if a != held] + [a for a, redraws in sets.items() if redraws != held]
    folder = work / f"{name}-without-{held}"
    if not folder.is_dir():
        partial = folder.with_name(folder.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        subprocess.run(
            [
                sys.executable,
                Path(__file__).parent.parent / "tools" / "render_tile_art.py",
                "--folder",
                partial,
                "--styles",
                ",".join(styles),
            ],
            check=True,
        )
        partial.rename(folder)
    return folder, styles


def more_art(work: Path, timings: dict):
    """What more drawings buy a reader of an art style it has never seen: as --steps held-out with
    colour and outline augmentation, but drawn from a tile folder of the other built-in styles and
    the MORE_ART sets; the outlined OpenMoji, the one the other styles miss, first."""
    for held in ("openmoji", "noto", "twemoji", "fluent"):
        folder, styles = more_art_folder(work, held)
        read_held_out(
            work,
            timings,
            held,
            "more-art-",
            f"tiles={folder}",
            "+".join(styles),
            "--hparam",
            "colour=1",
            "--hparam",
            "outline=1",
            *AS_MEASURED,
        )


# the shapes step's readers: held-out art, model name, trained on more art, width
SHAPES = (
    ("openmoji", "randconv-", False, 1),
    ("openmoji", "wide-randconv-", False, 2),
    ("openmoji", "wider-randconv-", False, 4),
    ("openmoji", "more-art-randconv-", True, 1),
    ("openmoji", "wide-more-art-randconv-", True, 2),
    ("openmoji", "wider-more-art-randconv-", True, 4),
    ("twemoji", "wide-randconv-", False, 2),
)  # and a filled style


def read_shapes_held_out(work: Path, timings: dict, held: str, name: str, more: bool, *hparams):
    """`read_held_out` for a reader pushed towards shapes over palettes (colour, outline and randconv
    augmentation), trained on the other built-in styles or, with `more`, on the more-art folder."""
    others = "+".join(a for a in ARTS if a != held)
    data = f"tiles={more_art_folder(work, held)[0]}" if more else f"art={others}"
    read_held_out(work, timings, held, name, data, "more art" if more else others, *SHAPES_AUGMENT, *hparams)


def shapes(work: Path, timings: dict):
    for held, name, more, width in SHAPES:
        read_shapes_held_out(
            work, timings, held, name, more, *(("--hparam", f"width={width}") if width > 1 else ()), *AS_MEASURED
        )


def flips(work: Path, timings: dict):
    """The shapes step's readers (trained with flips=false) on the same 1,000 held-out challenges,
    reading each tile once and then with its mirror image too (flips)."""
    from captchalab.attack import attack_source
    from captchalab.attackers.base import load_attacker
    from captchalab.data.dataset import GenerationSpec, Source

    for held, name, _, _ in SHAPES:
        model = work / f"tilecnn-{name}without-{held}.keras"
        if not model.is_file():
            print(f"{model.name}: missing (run --steps shapes first)", flush=True)
            continue
        reader = load_attacker(model)
        source = Source(spec=GenerationSpec("grid3", 1000, seed=901, params={"art": held}))
        for reader.hparams["flips"] in (False, True):
            result = attack_source(reader, source)[0]
            print(
                line(f"held-out art {held}, {name}reader, flips={str(reader.hparams['flips']).lower()}", result),
                flush=True,
            )


def every_class(work: Path, timings: dict):
    """The shapes step's wide readers trained on every tile's class, not the prompt's alone, and
    reading every tile with its mirror image (every_class and flips, the defaults since)."""
    for held, name, more, width in (
        ("openmoji", "every-class-wide-more-art-randconv-", True, 2),
        ("openmoji", "every-class-wide-randconv-", False, 2),
        ("openmoji", "every-class-wider-more-art-randconv-", True, 4),
    ):
        read_shapes_held_out(
            work,
            timings,
            held,
            name,
            more,
            "--hparam",
            f"width={width}",
            "--hparam",
            "every_class=true",
            "--hparam",
            "flips=true",
        )


def every_class_seeds(work: Path, timings: dict):
    """The wide more-art reader of every-class again from another seed (its challenges and its
    initial weights), with every_class on and off, both reading with flips."""
    for name, every in (
        ("seed2-answers-wide-more-art-randconv-", "false"),
        ("seed2-every-class-wide-more-art-randconv-", "true"),
    ):
        read_shapes_held_out(
            work,
            timings,
            "openmoji",
            name,
            True,
            "--hparam",
            "width=2",
            "--hparam",
            f"every_class={every}",
            "--hparam",
            "flips=true",
            "--seed",
            2,
        )


def most_art(work: Path, timings: dict):
    """every-class's wide reader (width 2, randconv, every_class, flips) with three more drawings
    of most classes (MOST_ART: ten styles without OpenMoji), held-out openmoji; from two seeds."""
    folder = more_art_folder(work, "openmoji", MOST_ART, "most-art")[0]
    for seed, name in ((1, "every-class-wide-most-art-randconv-"), (2, "seed2-every-class-wide-most-art-randconv-")):
        read_held_out(work, timings, "openmoji", name, f"tiles={folder}", "most art", *WIDE_EVERY_CLASS, "--seed", seed)


def ensemble(work: Path, timings: dict):
    """most-art's two readers (seeds 1 and 2) as one model averaging their scores (`captchalab
    ensemble`), attacking the same 1,000 held-out openmoji challenges."""
    members = [
        work / f"tilecnn-{name}without-openmoji.keras"
        for name in ("every-class-wide-most-art-randconv-", "seed2-every-class-wide-most-art-randconv-")
    ]
    if not all(m.is_file() for m in members):
        print("most-art's two readers are missing (run --steps most-art first)", flush=True)
        return
    model = work / "ensemble-most-art-without-openmoji.keras"
    if not model.is_file():
        cli("ensemble", "--model", members[0], "--model", members[1], "--out", model)
    result = attack(
        model, work / "attack-ensemble-most-art-held-out-openmoji", "--style", "grid3", "--param", "art=openmoji"
    )
    print(line("held-out art openmoji (most art, seeds 1 and 2 averaged)", result), flush=True)


def unlabelled(work: Path, timings: dict):
    """The wide every-class readers (more art, most art) trained on from their converged models
    with 1,000 unlabelled challenges of the held-out openmoji (seed 902, images alone) beside their
    labelled ones (`--unlabelled`), attacking the same 1,000 held-out challenges (seed 901) as
    every step here: what scraped challenges of a design buy a reader that has no labelled
    picture of its art."""
    scraped = work / "openmoji-scraped"
    if not scraped.is_dir():
        partial = work / "openmoji-scraped.partial"
        shutil.rmtree(partial, ignore_errors=True)
        cli("generate", "--style", "grid3", "--param", "art=openmoji", "--count", 1000, "--seed", 902, "--out", partial)
        for answers in ("labels.csv", "challenges.json"):  # images alone, as scraped
            (partial / answers).unlink()
        partial.rename(scraped)
    for name, sets, folder_name in (
        ("every-class-wide-more-art-randconv-", MORE_ART, "more-art"),
        ("every-class-wide-most-art-randconv-", MOST_ART, "most-art"),
    ):
        start = work / f"tilecnn-{name}without-openmoji.keras"
        if not start.is_file():
            print(f"{start.name}: missing (run --steps every-class and most-art first)", flush=True)
            continue
        folder = more_art_folder(work, "openmoji", sets, folder_name)[0]
        read_held_out(
            work,
            timings,
            "openmoji",
            f"unlabelled-{name}",
            f"tiles={folder}",
            folder_name.replace("-", " "),
            *WIDE_EVERY_CLASS,
            "--from",
            start,
            "--unlabelled",
            scraped,
        )


def matrix(work: Path, timings: dict):
    matrix = work / "matrix"
    if not (matrix / "report.json").is_file():
        designs = ",".join(f"grid3:art={a}" for a in ARTS)
        resume = ["--resume"] if (matrix / "matrix.json").is_file() else []
        cli(
            "matrix",
            "--train-styles",
            designs,
            "--test-styles",
            designs,
            "--attacker",
            "tilecnn",
            "--train-count",
            3000,
            "--count",
            500,
            "--out",
            matrix,
            *resume,
        )
    report = json.loads((matrix / "report.json").read_text())
    print("transfer matrix (rows: trained on, columns: tested on), challenge success:", flush=True)
    for art, row in zip(ARTS, report["matrix"]["captcha_accuracy"]):
        print(f"  {art}: " + "  ".join(f"{v:.1%}" if v is not None else "-" for v in row), flush=True)


def sweep(work: Path, timings: dict):
    sweep = work / "sweep"
    if not (sweep / "report.json").is_file():
        cli(
            "sweep",
            "--model",
            work / "tilecnn-grid3.keras",
            "--style",
            "grid3",
            "--strength",
            "0:1:5",
            "--count",
            500,
            "--out",
            sweep,
            "--force",
        )
    for step in json.loads((sweep / "report.json").read_text())["steps"]:
        print(f"  grid3 strength {step['value']}: success {step['captcha_accuracy']:.1%}", flush=True)


if __name__ == "__main__":
    main()
