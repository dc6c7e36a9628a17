"""`captchalab run`: a study file's grid through the engine, into one report."""
from __future__ import annotations

from pathlib import Path

from ..manifest import make_manifest
from .grid import Cell, rows_of, run_grid, study_marker
from .studyfile import Study


def run_study(study: Study, cells: list[Cell], out: Path, backend, resume: bool = False, on_cell=None) -> dict:
    """Run (or continue) the study into `out`; returns the report (also written as report.*)."""
    from ..report import write_grid_report
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
    report = {"kind": "study", "name": study.name, "file": str(study.path), "settings": study.settings(),
              "rows": rows, "cells": results,
              "manifest": make_manifest("report", command="run", study=study.settings())}
    write_grid_report(out, study.name, report, axes)
    return report
