"""`captchalab run`: a study file's grid through the engine, into one report."""

from __future__ import annotations

from pathlib import Path

from ..manifest import make_manifest
from .cells import Cell, rows_of
from .engine import run_grid, study_marker
from .report import write_study_report
from .studyfile import Study


def run_study(
    study: Study, cells: list[Cell], out: Path, backend, resume: bool = False, on_cell=None, humans: list[Path] = ()
) -> dict:
    """Run (or continue) the study into `out`; returns the report (also written as report.*). With
    `humans` (human-study folders), the report gains the security-usability frontier of its designs."""
    study_marker(out, study.settings(), resume)
    try:
        results = run_grid(cells, out, backend, resume, on_cell=on_cell)
    finally:
        if hasattr(backend, "shutdown"):
            backend.shutdown()
    by_id = {c.id: c for c in cells}
    rows = rows_of(results, lambda r: {"cell": r["id"], **by_id[r["id"]].coords})
    if study.converged_only:  # a lower bound is not a result this study accepts
        for row in rows:
            if row.get("lower_bound") and row["status"] == "done":
                row["status"], row["error"] = "not converged", "the attacker had not converged (converged_only)"
    axes = [k for k in cells[0].coords if k not in ("style", "train_style", "seed")] if cells else []
    report = {
        "kind": "study",
        "name": study.name,
        "file": str(study.path),
        "settings": study.settings(),
        "rows": rows,
        "cells": results,
        "manifest": make_manifest("report", command="run", study=study.settings()),
    }
    sections = []
    if humans:
        from ..humans.frontier import attackers_in_report, frontier_rows, frontier_sections, human_results

        found, left_out = human_results([Path(h) for h in humans])
        report["frontier"] = rows_with_humans = [
            r for r in frontier_rows(found, attackers_in_report(report)) if r.get("human_answers")
        ]
        report["humans_left_out"] = left_out
        sections = frontier_sections(rows_with_humans, left_out, out) if rows_with_humans else []
    write_study_report(out, study.name, report, axes, extra_sections=sections)
    return report
