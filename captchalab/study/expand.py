"""A study expanded into its cells: the grid's axes crossed, each cell's test set seeded from its
coordinates, each attacker entry turned into a fixed model, a read-only attacker or a training."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

from ..attackers.base import get_attacker, read_model_info
from ..data.dataset import GenerationSpec
from ..kinds import reads
from ..plugins import get_generator
from .cells import AttackerRef, Cell, Training, derive_seed
from .studyfile import MAX_CELLS, Study, StudyError


def build_cells(study: Study, max_cells: int = MAX_CELLS, resolve_base=None) -> list[Cell]:
    """Every cell of the study, each with its test set's seed derived from the study's seed and
    the generator coordinates (so every attacker and training size sees the same CAPTCHAs).

    `resolve_base(attacker, charset, hparams)` gives the model an attacker starting from "base" starts
    from (None: scratch)."""
    axes = _axes(study, max_cells)
    lo, hi = study.length
    style_kinds = {style: get_generator(style, list(study.plugin_dirs)).kind for style in axes["style"]}
    attacker_kinds = {entry["label"]: _entry_kind(study, entry) for entry in study.attackers}
    unread = sorted(k for k in set(style_kinds.values()) if not any(reads(a, k) for a in attacker_kinds.values()))
    if unread:
        raise StudyError(
            f"{study.path}: no attacker reads {', '.join(unread)} CAPTCHAs "
            f"(styles {', '.join(s for s, k in style_kinds.items() if k in unread)})"
        )
    cells = []
    for combo in itertools.product(*axes.values()):
        coords = dict(zip(axes, combo))
        cell_params = {k[6:]: v for k, v in coords.items() if k.startswith("param.")}
        generator_coords = [coords["style"], coords["strength"], sorted(cell_params.items()), coords["seed"]]
        test = GenerationSpec(
            coords["style"],
            study.test_count,
            lo,
            hi,
            study.charset,
            derive_seed(study.seed, "test", *generator_coords),
            coords["strength"],
            cell_params,
            study.plugin_dirs,
        )
        # each attacker reads the cells of its own kind only (a slider locator never meets a grid)
        kind = style_kinds[coords["style"]]
        refs = [
            _attacker_ref(study, entry, coords, cell_params, resolve_base)
            for entry in study.attackers
            if reads(attacker_kinds[entry["label"]], kind)
        ]
        cell_id = "-".join(_value_id(v) for v in coords.values())
        cells.append(Cell(cell_id, coords, test, refs, study.expect, study.ignore_case, examples=3))
    return cells


def _axes(study: Study, max_cells: int) -> dict[str, list]:
    """The grid's axes in the order cells are crossed; refused when empty or above `max_cells`."""
    g = study.grid
    axes = {
        "style": g["style"],
        "strength": g.get("strength", [0.5]),
        **{f"param.{k}": v for k, v in g.get("params", {}).items()},
    }
    for axis in ("train_style", "train_count", "unlabelled_count"):
        if g.get(axis):
            axes[axis] = g[axis]
    axes["seed"] = list(range(g.get("seeds", 1)))
    total = 1
    for values in axes.values():
        total *= len(values)
    if total == 0:
        raise StudyError(f"{study.path}: the grid is empty")
    if total > max_cells:
        raise StudyError(f"{study.path}: the grid has {total} cells, above `max_cells` {max_cells}")
    return axes


def _value_id(value) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", str(value))


def _entry_kind(study: Study, entry: dict) -> str:
    """The CAPTCHA kind a study's attacker entry reads (a model file's JSON says it)."""
    if "model" in entry:
        return read_model_info(Path(entry["model"])).get("kind", "text")
    return get_attacker(entry["attacker"], list(study.plugin_dirs)).kind


def _attacker_ref(study: Study, entry: dict, coords: dict, cell_params: dict, resolve_base) -> AttackerRef:
    label = entry["label"]
    if "model" in entry:
        return AttackerRef(label, model=entry["model"])
    cls = get_attacker(entry["attacker"], list(study.plugin_dirs))
    hparams = tuple(sorted(entry.get("hparams", {}).items()))
    if not cls.trainable:
        return AttackerRef(label, name=cls.name, charset=study.charset, hparams=hparams)
    count = entry.get("train_count", coords.get("train_count"))
    start = entry.get("from", "base")
    if start == "base":  # an attacker that declares no base starts from scratch
        start = str(resolve_base(cls.name, study.charset, dict(hparams)) or "scratch") if resolve_base else "scratch"
    if count == 0:
        if start == "scratch":
            return AttackerRef(label, name=cls.name, fresh=True, charset=study.charset, hparams=hparams)
        return AttackerRef(label, model=start)
    spec, seed = _training_spec(study, entry, coords, cell_params, count)
    training = Training(
        cls.name, spec, start, hparams, entry.get("epochs"), seed % 10_000, _unlabelled_spec(study, coords, cell_params)
    )
    return AttackerRef(label, training=training, charset=study.charset)


def _training_spec(
    study: Study, entry: dict, coords: dict, cell_params: dict, count: int
) -> tuple[GenerationSpec, int]:
    """The CAPTCHAs an attacker trains on: the cell's design, or the entry's own for a shared one.
    The seed is not the label's: every attacker trained on this generator gets the same CAPTCHAs."""
    shared = entry["train"] == "shared"
    style = entry["style"] if shared else coords.get("train_style", coords["style"])
    strength = entry.get("strength", 0.5 if shared else coords["strength"])
    params = {} if shared else cell_params
    lo, hi = study.length
    seed = derive_seed(
        study.seed, "train", style, strength, sorted(params.items()), count, 0 if shared else coords["seed"]
    )
    return GenerationSpec(style, count, lo, hi, study.charset, seed, strength, params, study.plugin_dirs), seed


def _unlabelled_spec(study: Study, coords: dict, cell_params: dict) -> GenerationSpec | None:
    """Unlabelled CAPTCHAs of the style attacked (never its test ones), when the grid asks for them."""
    if not coords.get("unlabelled_count"):
        return None
    lo, hi = study.length
    seed = derive_seed(
        study.seed,
        "unlabelled",
        coords["style"],
        coords["strength"],
        sorted(cell_params.items()),
        coords["unlabelled_count"],
        coords["seed"],
    )
    return GenerationSpec(
        coords["style"],
        coords["unlabelled_count"],
        lo,
        hi,
        study.charset,
        seed,
        coords["strength"],
        cell_params,
        study.plugin_dirs,
    )
