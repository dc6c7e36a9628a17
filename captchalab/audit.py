"""`captchalab audit`: from a CAPTCHA design to one verdict a designer can act on.

The audit finds the design's kind and fields the attacker ladder that reads it, as one study on
the grid engine (so it runs on any backend and resumes): every installed attacker that reads the
kind without training, off the shelf; and the kind's trained readers, each trained from its base
until it converges at a fixed ladder of label budgets (the same for every design). From the cells
it derives the break cost (for 10%, 50% and 90% success, the smallest budget that reaches it) and
one verdict: a headline, the ladder, what each attacker read when it failed, the convergence
state of every number, and what to try next, drawn from what was measured. verdict.json's schema
is in docs/audit.md.
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .attack import attack_source
from .attackers.base import get_attacker, make_attacker
from .data.dataset import FolderPart, GenerationSpec, Source, file_hashes, read_dataset, read_unlabelled
from .errors import CaptchalabError
from .kinds import get_kind, reads
from .manifest import make_manifest, sha256_bytes
from .plugins import get_generator, load_plugins
from .report import Report, Section, write_report
from .study.cells import AttackerRef, Cell, Training, derive_seed
from .study.expand import build_cells
from .study.runner import run_study
from .study.studyfile import Study

THRESHOLDS = (0.1, 0.5, 0.9)
EXAMPLES = 20  # misread challenges each cell names per attacker (the verdict shows a few, and compares them)
STRONG = 0.8  # an attacker that reads this share of a cell is one whose shared misreadings say something


@dataclass(frozen=True)
class Ladder:
    """How much an audit measures: the label budgets each trained reader is trained at, and how many
    fresh challenges every cell is attacked with."""

    budgets: tuple[int, ...]
    test_count: int
    epochs: int | None = None  # at most this many passes per training (None: until it converges)


LADDERS = {
    "quick": Ladder((300, 1000, 3000), 300),
    "standard": Ladder((100, 300, 1000, 3000, 10000), 1000),
    "thorough": Ladder((100, 300, 1000, 3000, 10000, 30000), 2000),
}


def ladder_attackers(spec, style_reader: str) -> tuple[list[str], list[str], dict]:
    """(the readers an audit trains, the off-the-shelf attackers it runs, {attacker: why it is left
    out}) for the design of `spec` (a GenerationSpec or FolderPart of one challenge, read as a
    probe): the style's reader, the kind's default and its `audit_readers`; every installed
    attacker that reads the kind without training and reads the probe here (one not installed, or
    that needs a setting, is left out)."""
    the_kind = get_kind(spec.kind)
    trained = list(dict.fromkeys(a for a in (style_reader, the_kind.default_attacker, *the_kind.audit_readers) if a))
    off_shelf, left_out = [], {}
    probe = Source(spec=spec)
    for name, cls in sorted(load_plugins(list(spec.plugin_dirs))[1].items()):
        if cls.trainable or not (reads(cls.kind, spec.kind) or cls.any_kind):
            continue
        try:
            attacker = make_attacker(name, spec.charset, list(spec.plugin_dirs)).for_kind(spec.kind)
            result, _ = attack_source(attacker, probe, workers=0)
            if result["skipped"]:
                raise CaptchalabError(next(iter(result["skipped_reasons"].values()), "it could not read a challenge"))
            off_shelf.append(name)
        except Exception as exc:  # noqa: BLE001  (a plugin may fail in any way: it is named, not run)
            why = str(exc) if isinstance(exc, CaptchalabError) else f"{type(exc).__name__}: {exc}"
            left_out[name] = why.removeprefix(f"{name}: ")
    return trained, off_shelf, left_out


def audit(
    out: str | Path,
    style: str | None = None,
    params: dict | None = None,
    strength: float = 0.5,
    dataset: str | Path | None = None,
    test: str | Path | None = None,
    kind: str | None = None,
    unlabelled: str | Path | None = None,
    budget: str | Ladder = "quick",
    adversarial_against: str | Path | None = None,
    eps: float = 8.0,
    method: str = "pgd",
    steps: int = 10,
    backend=None,
    resume: bool = False,
    humans=(),
    plugin_dirs=(),
    seed: int = 0,
    say=lambda message: None,
    on_cell=None,
) -> dict:
    """Audit a design into `out`; returns the verdict (also written as verdict.json, verdict.md and
    verdict.html). The design is a `style` (with `params`, at `strength`), or a `dataset` folder of
    labelled CAPTCHAs (its labels read as `kind` if given), tested on `test` or on a split of its
    own; with `unlabelled` (a folder of scraped ones), the readers that learn without labels also
    train on the smallest budget plus those. With `adversarial_against` (a differentiable attacker's
    model file), the design is the style's challenges perturbed against it (`eps` pixels of 0-255 by
    `method` in `steps` steps), and the audit adapts: that model reads them as it is, and fine-tuned
    on them at every budget (as for a dataset whose manifest says it was perturbed). `backend`: a
    study backend (study.backends.make_backend; default local, in this process)."""
    from .pretrained import starting_model
    from .study.backends import make_backend

    start = time.perf_counter()
    if (style is None) == (dataset is None):
        raise CaptchalabError("give exactly one of `style` and `dataset`")
    if not isinstance(budget, Ladder) and budget not in LADDERS:
        raise CaptchalabError(f"unknown budget {budget!r} (choose {', '.join(LADDERS)})")
    ladder = budget if isinstance(budget, Ladder) else LADDERS[budget]
    out = Path(out)
    bases = {}  # each attacker's start, found (and said) once

    def resolve_base(attacker, charset, hparams):
        key = (attacker, charset, tuple(sorted(hparams.items())))
        if key not in bases:
            bases[key] = starting_model("base", attacker, charset, say, plugin_dirs=tuple(plugin_dirs), hparams=hparams)
        return bases[key]

    if adversarial_against is not None and style is None:
        raise CaptchalabError("`adversarial_against` applies to `style`: a perturbed dataset says so in its manifest")
    if style is not None:
        if test is not None or kind is not None or unlabelled is not None:
            raise CaptchalabError(
                "`test`, `kind` and `unlabelled` apply to `dataset`; a style draws its own challenges"
            )
    if adversarial_against is not None:
        perturbed = _perturbed_design(
            out, style, params, strength, ladder, plugin_dirs, seed, adversarial_against, (eps, method, steps), resume
        )
        study, cells, design, found = _dataset_ladder(
            out, perturbed["train"], perturbed["test"], None, None, ladder, plugin_dirs, seed, resolve_base
        )
        design = {
            "name": f"{style} at strength {strength}, perturbed against {Path(adversarial_against).name} ({eps:g}/255)",
            "style": style,
            "strength": strength,
            "parameters": perturbed["parameters"],
            "kind": design["kind"],
            "perturbation": design["perturbation"],
            "split": design["split"],
        }
    elif style is not None:
        study, cells, design, found = _style_ladder(
            out, style, params, strength, ladder, plugin_dirs, seed, resolve_base
        )
    else:
        if params:
            raise CaptchalabError("`params` apply to `style`, not to `dataset`")
        study, cells, design, found = _dataset_ladder(
            out, dataset, test, kind, unlabelled, ladder, plugin_dirs, seed, resolve_base
        )
    report = run_study(study, cells, out / "ladder", backend or make_backend("local"), resume, on_cell, humans)
    verdict = judge(report, cells, design, *found)
    verdict["budget"] = budget if isinstance(budget, str) else "custom"
    verdict["machine"] = {"cpu": cpu_name(), "cores": _cores(), "seconds": round(time.perf_counter() - start)}
    out.mkdir(parents=True, exist_ok=True)
    sections = verdict_sections(verdict)
    curve = out / "ladder" / "curve.png"
    if curve.is_file():  # the ladder study's curve: success by label budget, one line per attacker
        sections.insert(
            2,
            Section(
                "Success by label budget",
                ["Each attacker's success against the labels it trained on (ladder/curve.png)."],
                images=[("success by label budget", curve)],
            ),
        )
    write_report(out, Report(f"Audit: {design['name']}", verdict, sections), "verdict")
    return verdict


def _study(out, name, seed, charset, length, test_count, plugin_dirs, grid, attackers, ladder: Ladder) -> Study:
    """The study an audit's ladder runs as (its settings are what --resume checks); `attackers`:
    (the trained readers, the off-the-shelf ones)."""
    trained, off_shelf = attackers
    epochs = {"epochs": ladder.epochs} if ladder.epochs else {}
    entries = [{"label": n, "attacker": n, "train": "cell", "from": "base", **epochs} for n in trained]
    return Study(
        path=out / "audit",
        name=name,
        seed=seed,
        charset=charset,
        length=length,
        test_count=test_count,
        expect=None,
        ignore_case=False,
        plugin_dirs=tuple(str(d) for d in plugin_dirs),
        converged_only=False,
        grid=grid,
        attackers=entries + [{"label": n, "attacker": n} for n in off_shelf],
    )


def _style_ladder(out, style, params, strength, ladder, plugin_dirs, seed, resolve_base):
    """The ladder of a style as a study: one cell per budget, each with fresh challenges."""
    spec = GenerationSpec(
        style, 1, seed=seed, strength=strength, params=dict(params or {}), plugin_dirs=tuple(plugin_dirs)
    )
    resolved = spec.check()
    found = ladder_attackers(spec, get_generator(style, list(plugin_dirs)).reader_for(resolved))
    grid = {
        "style": [style],
        "strength": [strength],
        "params": {k: [v] for k, v in (params or {}).items()},
        "train_count": list(ladder.budgets),
    }
    name, length = f"audit of {style} at strength {strength}", (spec.min_length, spec.max_length)
    study = _study(out, name, seed, spec.charset, length, ladder.test_count, plugin_dirs, grid, found[:2], ladder)
    cells = build_cells(study, resolve_base=resolve_base)
    for cell in cells:
        cell.examples = EXAMPLES
    for cell in cells[1:]:  # off the shelf: what no label budget changes, read once (the first cell's)
        cell.attackers = [ref for ref in cell.attackers if ref.label not in found[1]]
    design = {
        "name": f"{style} at strength {strength}",
        "style": style,
        "strength": strength,
        "parameters": resolved,
        "kind": spec.kind,
    }
    return study, cells, design, found


def split_by_picture(dataset, test_count: int, seed: int) -> tuple[list[str], list[str]]:
    """(training names, test names) of a dataset folder: its images grouped by content (a picture
    stored twice stays on one side), the groups in a seeded order, the first `test_count` images'
    groups to test. The training names keep that order: each budget of the ladder is a prefix."""
    groups: dict[str, list[str]] = {}
    for name in dataset.filenames:
        try:
            key = sha256_bytes((dataset.root / name).read_bytes())
        except OSError:  # unreadable: its own group (the attack skips and names it)
            key = f"unreadable:{name}"
        groups.setdefault(key, []).append(name)
    order = [list(groups.values())[i] for i in np.random.default_rng(seed).permutation(len(groups))]
    test, train = [], []
    for names in order:
        (test if len(test) < test_count else train).extend(names)
    return train, test


def _dataset_ladder(out, folder, test_folder, kind, unlabelled, ladder, plugin_dirs, seed, resolve_base):
    """The ladder of a dataset folder as a study: nested prefixes of its training part, every cell
    tested on the same test part (its own split, or `test_folder`); with `unlabelled`, the
    semi-supervised readers once more at the smallest budget, with the unlabelled folder."""
    load_plugins(list(plugin_dirs))  # a plugin may define the kind the folder's labels hold
    whole = read_dataset(folder, None, False, kind)
    root, kind = str(Path(folder).resolve()), whole.kind
    if test_folder is not None:
        tests = read_dataset(test_folder, None, False, kind)
        shared = file_hashes(whole) & file_hashes(tests)
        if shared:
            raise CaptchalabError(
                f"`test` {test_folder} shares {len(shared)} images with {folder}: test on other CAPTCHAs"
            )
        train_names = [whole.filenames[i] for i in np.random.default_rng(seed).permutation(len(whole))]
        test_part = FolderPart(str(Path(test_folder).resolve()), tuple(tests.filenames), kind, tuple(plugin_dirs))
        rule = f"all of {folder} to train (in a seeded order), {test_folder} to test"
    else:
        test_count = min(ladder.test_count, len(whole) // 4)
        train_names, test_names = split_by_picture(whole, test_count, seed)
        test_part = FolderPart(root, tuple(test_names), kind, tuple(plugin_dirs))
        rule = (
            f"by picture (identical images on one side), groups in a seeded order (seed {seed}): "
            f"{len(test_names)} to test, the other {len(train_names)} to train"
        )
    if len(train_names) < ladder.budgets[0]:
        raise CaptchalabError(
            f"{folder} holds {len(whole)} labelled CAPTCHAs: too few for the smallest budget "
            f"({ladder.budgets[0]:,}) beside its test split ({test_part.count:,})"
        )
    budgets = [b for b in ladder.budgets if b < len(train_names)] + [len(train_names)]
    probe = FolderPart(test_part.root, test_part.names[:1], kind, tuple(plugin_dirs))
    found = ladder_attackers(probe, "")
    trained, off_shelf, _ = found
    if not trained and not off_shelf:
        raise CaptchalabError(f"no installed attacker reads {kind} CAPTCHAs")
    semi = []
    if unlabelled is not None:
        semi = [n for n in trained if get_attacker(n, list(plugin_dirs)).semi_supervised]
        scraped = read_unlabelled(unlabelled, folder)
        shared = file_hashes(scraped) & (file_hashes(whole) | file_hashes(Source(spec=test_part).dataset))
        if shared:
            raise CaptchalabError(
                f"`unlabelled` {unlabelled} shares {len(shared)} images with the labelled CAPTCHAs: give scraped ones"
            )
        if not semi:
            raise CaptchalabError(f"no trained reader of {kind} CAPTCHAs learns from unlabelled ones")
        found = (trained + [f"{n}+unlabelled" for n in semi], off_shelf, found[2])
    charset = whole.charset if get_kind(kind).characters else ""
    perturbation, target = (whole.manifest or {}).get("adversarial"), None
    if perturbation:  # a defence to adapt to: the model the challenges were perturbed against
        target = _perturbation_target(perturbation, plugin_dirs)
        if isinstance(target, str):
            found[2]["the perturbation's target"], target = target, None
        else:
            found = (found[0] + [f"{target[0]} (adapted)"], found[1] + [f"{target[0]} (target)"], found[2])
    epochs = ladder.epochs
    cells = []
    for k, n in enumerate(budgets):
        part = FolderPart(root, tuple(train_names[:n]), kind, tuple(plugin_dirs))
        seeded = derive_seed(seed, "train", n) % 10_000  # every training at this budget
        refs = []
        for name in trained:
            start = str(resolve_base(name, charset, {}) or "scratch")
            training = Training(name, part, start, (), epochs, seeded)
            refs.append(AttackerRef(name, training=training, charset=charset))
        if target:  # the adaptive attacker: the perturbation's own target, fine-tuned on the perturbed challenges
            name, path, info = target
            hparams = tuple(sorted((info.get("hyperparameters") or {}).items()))
            training = Training(name, part, path, hparams, epochs, seeded)
            refs.append(AttackerRef(f"{name} (adapted)", training=training, charset=info["charset"]))
        if k == 0:  # off the shelf: the same test part in every cell, read once
            refs += [AttackerRef(name, name=name, charset=charset) for name in off_shelf]
            if target:
                refs.append(AttackerRef(f"{target[0]} (target)", model=target[1], charset=target[2]["charset"]))
            for name in semi:  # few labels plus the scraped folder
                start = str(resolve_base(name, charset, {}) or "scratch")
                training = Training(name, part, start, (), epochs, seeded, str(Path(unlabelled).resolve()))
                refs.append(AttackerRef(f"{name}+unlabelled", training=training, charset=charset))
        cells.append(
            Cell(
                f"budget-{n}",
                {"style": f"dataset:{Path(folder).name}", "train_count": n, "seed": 0},
                test_part,
                refs,
                examples=EXAMPLES,
            )
        )
    grid = {
        "dataset": root,
        "test": str(test_folder) if test_folder else None,
        "kind": kind,
        "unlabelled": str(unlabelled) if unlabelled else None,
        "train_count": budgets,
        "epochs": epochs,
    }
    name = f"audit of {Path(folder).name}"
    study = _study(out, name, seed, charset, (1, 8), test_part.count, plugin_dirs, grid, found[:2], ladder)
    design = {
        "name": Path(folder).name,
        "dataset": root,
        "count": len(whole),
        "kind": kind,
        "split": rule,
        "rejected_rows": len(whole.rejected),
    }
    if perturbation:
        design["perturbation"] = perturbation
    return study, cells, design, found


def _perturbation_target(perturbation: dict, plugin_dirs) -> tuple[str, str, dict] | str:
    """(attacker name, model path, its info) of the model a dataset was perturbed against, as its
    manifest records it; or why it cannot be used (missing, or changed since)."""
    from .attackers.base import read_model_info

    path = Path(perturbation.get("target_model") or "")
    if not path.is_file():
        return f"the model the challenges were perturbed against ({path}) is not here: the adaptive step is left out"
    if sha256_bytes(path.read_bytes()) != perturbation.get("target_model_sha256"):
        return f"{path} has changed since the challenges were perturbed against it: the adaptive step is left out"
    info = read_model_info(path)
    get_attacker(info["attacker"], list(plugin_dirs))  # installed, or a one-line error
    return info["attacker"], str(path.resolve()), info


def _perturbed_design(out, style, params, strength, ladder, plugin_dirs, seed, against, perturbation, resume) -> dict:
    """The perturbed design as two dataset folders under out/design, drawn once (kept on --resume):
    `train` (the largest budget) and `test` (the ladder's test count, other challenges), each
    perturbed against `against` with (eps, method, steps)."""
    from .data.generate import generate_dataset
    from .generation.adversarial import adversarial_transform

    eps, method, steps = perturbation
    folders = {}
    for part, count, part_seed in (
        ("train", max(ladder.budgets), seed),
        ("test", ladder.test_count, derive_seed(seed, "audit-test") % 2**31),
    ):
        spec = GenerationSpec(
            style, count, seed=part_seed, strength=strength, params=dict(params or {}), plugin_dirs=tuple(plugin_dirs)
        )
        folder = out / "design" / part
        if resume and (folder / "manifest.json").is_file():
            drawn = json.loads((folder / "manifest.json").read_text()).get("adversarial") or {}
            asked = (eps, method, steps, sha256_bytes(Path(against).read_bytes()))
            if (drawn.get("eps"), drawn.get("method"), drawn.get("steps"), drawn.get("target_model_sha256")) != asked:
                raise CaptchalabError(
                    f"`resume`: {folder} was perturbed with other settings or against another model; "
                    "audit into another folder"
                )
        else:
            model = str(Path(against).resolve())  # the manifest's record finds it from anywhere
            transform = adversarial_transform(model, spec, method, f"{eps:g}", steps, None, part_seed, plugin_dirs)
            generate_dataset(spec, folder, force=True, transform=transform)
        folders[part] = folder
    folders["parameters"] = spec.check()
    return folders


def judge(report, cells, design: dict, trained, off_shelf, left_out) -> dict:
    """The verdict from a finished ladder study: per attacker its numbers at each budget, break
    costs, the headline and the advice."""
    rows = [r for r in report["rows"] if r.get("attacker")]
    attackers = {}
    for name in trained + off_shelf:
        mine = [r for r in rows if r["attacker"] == name]
        steps = [_step(r) for r in sorted(mine, key=lambda r: r["train_count"])]
        if name in off_shelf:  # no budget changes it: read in one cell
            steps = [_pooled(mine)]
        attackers[name] = {
            "trained": name in trained,
            "steps": steps,
            "break_cost": _break_costs(steps, [s["budget"] for s in steps]) if name in trained else None,
            "failures": _failures(report, cells, name),
        }
    verdict = {
        "design": design,
        "ladder": sorted({c.coords["train_count"] for c in cells}),
        "test_count": cells[0].test.count if cells else 0,
        "thresholds": list(THRESHOLDS),
        "attackers": attackers,
        "left_out": left_out,
        "manifest": make_manifest("verdict", command="audit", study=report["settings"]),
    }
    if report.get("frontier") is not None:
        verdict["people"] = report["frontier"]
        verdict["people_left_out"] = report.get("humans_left_out")
    verdict.update(_headline(attackers))
    verdict["suspect_labels"] = _suspect_labels(report, cells)
    verdict["advice"] = _advice(attackers, verdict["ladder"], verdict["suspect_labels"])
    return verdict


def _step(row: dict) -> dict:
    return {
        "budget": row["train_count"],
        "success": row.get("captcha_accuracy"),
        "interval": [row["ci95_low"], row["ci95_high"]] if row.get("ci95_low") is not None else None,
        "per_second": row.get("captchas_per_second"),
        "converged": row.get("converged"),
        "lower_bound": bool(row.get("lower_bound")),
        "status": row["status"],
        "error": row.get("error") or None,
    }


def _pooled(rows: list[dict]) -> dict:
    """An off-the-shelf attacker's one number: its successes over every cell's challenges."""
    from .score import wilson

    done = [r for r in rows if r["status"] == "done" and r.get("count")]
    n = sum(r["count"] for r in done)
    k = round(sum(r["captcha_accuracy"] * r["count"] for r in done))
    speeds = [r["captchas_per_second"] for r in done if r.get("captchas_per_second")]
    return {
        "budget": 0,
        "success": k / n if n else None,
        "interval": wilson(k, n),
        "per_second": round(sum(speeds) / len(speeds), 1) if speeds else None,
        "converged": None,
        "lower_bound": False,
        "status": "done" if done else "failed",
        "error": None if done else next((r.get("error") for r in rows if r.get("error")), "no cell finished"),
        "count": n,
    }


def _break_costs(steps: list[dict], ladder) -> dict:
    """For each threshold: the smallest budget whose success reaches it, as the range it lies in
    ("between" the budget before and it), or "more than" the largest when none does."""
    costs = {}
    for t in THRESHOLDS:
        reached = next((s for s in steps if s["status"] == "done" and (s["success"] or 0) >= t), None)
        key = f"{round(t * 100)}%"
        if reached is None:
            costs[key] = {"more_than": max(ladder), "said": f"more than {max(ladder):,}"}
            continue
        n = reached["budget"]
        before = max((b for b in ladder if b < n), default=0)
        costs[key] = {
            "between": [before, n],
            "said": f"between {before:,} and {n:,}" if before else f"at most {n:,}",
            "lower_bound": reached["lower_bound"],
        }
    return costs


def best_step(attackers: dict, trained: bool) -> tuple[str, dict] | None:
    """(attacker, step) of a verdict's `attackers` the headline names: the highest success among the
    trained readers (or the off-the-shelf ones); among equals, a converged number, then the fewest
    labels. None when none finished."""
    found = [
        (name, s)
        for name, a in attackers.items()
        if a["trained"] == trained
        for s in a["steps"]
        if s["status"] == "done" and s["success"] is not None
    ]
    if not found:
        return None
    # the highest success; among equals, a converged number before a lower bound, then the fewest labels
    return max(found, key=lambda f: (round(f[1]["success"], 3), not f[1]["lower_bound"], -f[1]["budget"]))


def _said(name: str, step: dict) -> str:
    low, high = step["interval"] or (None, None)
    interval = f" ({low:.1%}-{high:.1%})" if low is not None else ""
    bound = " (a lower bound: it had not converged)" if step["lower_bound"] else ""
    return f"{name} reads {step['success']:.1%}{interval}{bound}"


def _headline(attackers: dict) -> dict:
    trained, shelf = best_step(attackers, True), best_step(attackers, False)
    best = max((b for b in (trained, shelf) if b), key=lambda b: b[1]["success"], default=None)
    if best is None:
        return {"status": "unmeasured", "headline": "no attacker finished: see the ladder's errors"}
    success = best[1]["success"]
    status = "broken" if success >= 0.5 else "weakened" if success >= 0.1 else "holds"
    parts = []
    if trained:
        parts.append(f"{_said(*trained)} after {trained[1]['budget']:,} labelled CAPTCHAs")
    if shelf:
        parts.append(f"{_said(*shelf)} off the shelf")
    speed = best[1].get("per_second")
    rate = f"; that solves about {success * speed:.1f} a second on this machine" if speed and success < 0.5 else ""
    return {
        "status": status,
        "headline": f"{status}: " + "; ".join(parts) + rate,
        "rests_on_unconverged": bool(best[1]["lower_bound"]),
    }


def _suspect_labels(report: dict, cells) -> list[dict]:
    """Challenges every strong attacker of the first cell (reading at least STRONG of it) misread the
    same way, against the label: for a site's corpus, most likely wrong labels (each costs every
    attacker the same point); for a generated design, a character drawn like another. Needs two
    strong attackers whose misread lists are whole (under EXAMPLES)."""
    first = next((c for c in report["cells"] if c["id"] == cells[0].id), None) if cells else None
    readers = [
        r
        for r in ((first or {}).get("per_attacker") or {}).values()
        if (r.get("captcha_accuracy") or 0) >= STRONG and len(r.get("misread") or []) < EXAMPLES
    ]
    if len(readers) < 2:
        return []
    shared = set.intersection(*({(i, read) for i, read in r["misread"]} for r in readers))
    source = Source(spec=cells[0].test)
    return [
        {"name": sample.name, "label": sample.text, "read": read, "attackers": len(readers)}
        for index, read in sorted(shared)
        for sample in [source.sample(index)]
    ]


def _advice(attackers: dict, ladder, suspect: list[dict] = ()) -> list[str]:
    """What to try next, in words, from what was measured (each rule names the numbers it reads)."""
    top = {
        name: max((s["success"] or 0 for s in a["steps"] if s["status"] == "done"), default=0)
        for name, a in attackers.items()
    }
    advice = []
    if "segment" in top and "ctc" in top and top["ctc"] >= 0.5 and top["segment"] < top["ctc"] / 2:
        advice.append(
            f"Segmentation fails (segment at most {top['segment']:.0%}) but a reader that does not segment "
            f"does not (ctc {top['ctc']:.0%}): distortion that defeats cutting will not stop it."
        )
    # (a perturbation's own target is a trained model the design was made against, not an off-the-shelf solver)
    shelf = [n for n, a in attackers.items() if not a["trained"] and top[n] >= 0.1 and not n.endswith(" (target)")]
    if shelf:
        advice.append(
            f"No training is needed to attack it: {', '.join(f'{n} ({top[n]:.0%})' for n in shelf)} off the shelf. "
            "A design an attacker can solve without labelling anything gives the least protection."
        )
    for name, a in attackers.items():
        cost = (a["break_cost"] or {}).get("90%", {})
        if a["trained"] and "between" in cost and cost["between"][1] <= 1000:
            advice.append(
                f"{name} reaches 90% with {cost['said']} labelled CAPTCHAs, an afternoon of labelling: "
                "a stronger setting of this design (or another design) is needed to raise that cost."
            )
            break
    if all(v < 0.1 for v in top.values()) and top:
        advice.append(
            f"No attacker here reached 10% with up to {max(ladder):,} labels. Check what people pay for it "
            "(`--humans`), and that a 1% solver at its speed is not already a working bot."
        )
    for name in [n for n in top if n.endswith(" (adapted)")]:
        target = name.removesuffix(" (adapted)")
        held = top.get(f"{target} (target)")
        if held is not None and held < 0.5 <= top[name]:
            advice.append(
                f"The perturbation stops the model it was made against ({target} reads {held:.0%} of the perturbed "
                f"challenges) but not that model fine-tuned on them ({top[name]:.0%}): a defence fitted to one fixed "
                "model does not survive an attacker that adapts."
            )
        elif held is not None and held >= 0.5:
            advice.append(
                f"The perturbation does not stop even the model it was made against ({target} reads {held:.0%} of "
                "the perturbed challenges): a larger eps, or another defence, is needed."
            )
    if suspect:
        shown = ", ".join(f"{s['name']} labelled {s['label']!r}, read {s['read']!r}" for s in suspect[:3])
        advice.append(
            f"{len(suspect)} challenge{'s were' if len(suspect) > 1 else ' was'} read the same way by all "
            f"{suspect[0]['attackers']} attackers that read "
            f"four in five or more, against their labels ({shown}): check those labels. Wrong ones cap every "
            "attacker's success alike; in a generated design, such a challenge draws one character like another."
        )
    if any(s["lower_bound"] for a in attackers.values() for s in a["steps"]):
        advice.append(
            "Numbers marked as lower bounds come from attackers that had not converged (too few labels to "
            "decide when to stop, or a budget that ended first): a patient attacker reads at least that much."
        )
    return advice


def _failures(report: dict, cells, name: str, limit: int = 3) -> list[dict]:
    """What `name` read on a few challenges it failed, at the largest budget it ran (truth beside)."""
    results = [c for c in report["cells"] if name in (c.get("per_attacker") or {})]
    if not results:
        return []
    last = max(results, key=lambda c: c["coords"].get("train_count", 0))
    misread = last["per_attacker"][name].get("misread") or []
    cell = next(c for c in cells if c.id == last["id"])
    source = Source(spec=cell.test)
    return [{"truth": source.sample(index).text, "read": read} for index, read in misread[:limit]]


def verdict_sections(verdict: dict) -> list[Section]:
    ladder = verdict["ladder"]
    lines = [
        "| attacker | " + " | ".join(f"{n:,} labels" for n in ladder) + " | off the shelf | challenges/s |",
        "|---" * (len(ladder) + 3) + "|",
    ]
    for name, a in verdict["attackers"].items():
        by_budget = {s["budget"]: s for s in a["steps"]}
        cells = [_cell(by_budget.get(n)) for n in ladder] if a["trained"] else ["-"] * len(ladder)
        shelf = "-" if a["trained"] else _cell(a["steps"][0])
        speeds = [s["per_second"] for s in a["steps"] if s.get("per_second")]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {shelf} | {speeds[-1] if speeds else '-'} |")
    costs = ["| attacker | " + " | ".join(f"{k} success" for k in ("10%", "50%", "90%")) + " |", "|---|---|---|---|"]
    for name, a in verdict["attackers"].items():
        if a["break_cost"]:
            costs.append(f"| {name} | " + " | ".join(a["break_cost"][k]["said"] for k in ("10%", "50%", "90%")) + " |")
    failed = [
        f"- {name}: " + "; ".join(f"read {f['read'] or '(nothing)'!r} for {f['truth']!r}" for f in a["failures"])
        for name, a in verdict["attackers"].items()
        if a["failures"]
    ]
    machine = verdict.get("machine", {})
    return [
        Section(None, [f"**{verdict['headline']}**"]),
        Section(
            "The ladder",
            lines
            + [
                "",
                "Success in one attempt on fresh challenges, with its Wilson 95% interval; * marks a lower "
                "bound (the attacker had not converged). Throughput beside it: a solver that succeeds rarely "
                "but fast is still a working bot.",
            ],
        ),
        Section("Break cost: labelled CAPTCHAs an attacker needs", costs),
        Section("What the attackers read when they failed", failed or ["(none failed)"]),
        Section("What to try next", [f"- {a}" for a in verdict["advice"]] or ["- nothing measured suggests a change"]),
        Section("People", _people_lines(verdict) if "people" in verdict else []),
        Section(
            "Left out",
            [f"- {n}: {why}" for n, why in verdict["left_out"].items()] or ["- none"],
        ),
        Section(
            None,
            [
                f"Measured on {machine.get('cpu', 'an unknown CPU')} ({machine.get('cores', '?')} cores) in {machine.get('seconds', '?')} s."
            ],
        ),
    ]


def _people_lines(verdict: dict) -> list[str]:
    """People's success and time beside the best attacker's, per design the human studies hold."""
    lines = [
        "| design | people succeed | median seconds | best attacker | it succeeds | on the frontier |",
        "|---|---|---|---|---|---|",
    ]
    for r in verdict["people"]:
        low, high = r.get("human_success_ci95") or (0, 0)
        people = f"{r['human_success']:.1%} ({low:.1%}-{high:.1%})" if r.get("human_success") is not None else "-"
        seconds = r.get("human_median_seconds")
        attacker = r.get("attacker_success")
        lines.append(
            f"| {r.get('label') or r['key']} | {people} | {seconds if seconds is not None else '-'} | "
            f"{r.get('best_attacker') or '-'} | {f'{attacker:.1%}' if attacker is not None else '-'} | "
            f"{'yes' if r.get('on_front') else 'no'} |"
        )
    left = verdict.get("people_left_out") or {}
    return lines + ([""] + [f"- left out: {k}: {v}" for k, v in left.items()] if left else [])


def _cell(step: dict | None) -> str:
    if not step or step["status"] != "done" or step["success"] is None:
        return "failed" if step else "-"
    low, high = step["interval"] or (0, 0)
    return f"{step['success']:.1%} ({low:.1%}-{high:.1%})" + ("*" if step["lower_bound"] else "")


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _cores() -> int:
    from .study.cells import cpu_count

    return cpu_count()
