"""The reports of studies: one for every grid (sweep, matrix, study file) and one for adversarial
CAPTCHAs. Each builds the shape report.py writes (sections, plots, cell tables)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..kinds.base import LOWER_BOUND_NOTE
from ..kinds.base import interval as _interval
from ..kinds.base import pct as _pct
from ..plots import (
    atomic_plot,
    group_rows,
    mean_of,
    perturbation_sheet,
    plot_adversarial,
    plot_confusion,
    plot_curve,
    plot_heatmap,
    series_keys,
)
from ..report import Report, Section, slug, write_report


def break_cost(rows: list[dict], thresholds=(0.5, 0.9)) -> list[dict]:
    """For each attacker (and style): the fewest labelled CAPTCHAs whose mean CAPTCHA accuracy
    reaches each threshold, None when no measured size does."""
    done = [r for r in rows if r.get("status") == "done" and isinstance(r.get("train_count"), int)]
    keys = series_keys(done, "train_count", ["train_count"])
    out = []
    for series, members in sorted(group_rows(done, keys).items(), key=lambda kv: str(kv[0])):
        sizes = sorted({m["train_count"] for m in members})
        curve = {n: mean_of(m["captcha_accuracy"] for m in members if m["train_count"] == n) for n in sizes}
        entry = {k: v for k, v in zip(keys, series)}
        for t in thresholds:
            entry[f"labelled_for_{int(t * 100)}%"] = next((n for n in sizes if (curve[n] or 0) >= t), None)
        entry["curve"] = curve
        out.append(entry)
    return out


def write_study_report(
    out: Path,
    title: str,
    report: dict,
    axes: list[str],
    extra_images: list[tuple[str, Path]] = (),
    extra_sections: list[Section] = (),
) -> None:
    """The one report of every grid (sweep, matrix, study): report.json, the cell table as
    cells.json and cells.csv (one row per cell and attacker), report.md, report.html, and its
    plots: a curve per swept coordinate (one line per attacker), heat maps for style x style,
    break costs for a training-size axis."""
    rows = report["rows"]
    plots = Section("Plots", images=_curves(out, title, report, axes) + _heatmaps(out, report))
    sections = []
    if "train_count" in axes:
        report["break_cost"] = break_cost(rows)
        sections.append(_break_cost_section(report["break_cost"], series_keys(rows, "train_count", axes)))
    if report.get("kind") == "sweep":
        plots.images += _confusion(out, report["steps"])
    sections.append(_cells_section(rows))
    plots.images += list(extra_images)
    sections += list(extra_sections)
    sections.append(plots)
    write_report(out, Report(title, report, sections, tables={"cells": rows}))


def _curves(out: Path, title: str, report: dict, axes: list[str]) -> list[tuple[str, Path]]:
    """A curve per swept coordinate: accuracy against it, one line per attacker."""
    rows = report["rows"]
    swept = [a for a in axes if len({r.get(a) for r in rows}) > 1 or report.get("kind") == "sweep"]
    images = []
    for axis in swept:
        name = "curve.png" if len(swept) == 1 else f"curve-{axis.replace('.', '-')}.png"
        draw = lambda path, axis=axis: plot_curve(rows, axis, axes, f"{title}: accuracy against {axis}", path=path)
        images.append((f"Accuracy against {axis}", atomic_plot(out / name, draw)))
    return images


def _heatmaps(out: Path, report: dict) -> list[tuple[str, Path]]:
    """Style x style heat maps: a matrix's own, or one per attacker when a study crossed styles."""
    images = []
    caption = "{}: CAPTCHA accuracy per (training, test) style"
    if report.get("matrix"):
        matrices = report.get("matrices") or {report["attacker"]: report["matrix"]}
        for k, (name, matrix) in enumerate(matrices.items()):
            path = out / ("heatmap.png" if k == 0 else f"heatmap-{slug(name)}.png")
            draw = lambda p, name=name, matrix=matrix: plot_heatmap(
                matrix["captcha_accuracy"],
                report["train_styles"],
                report["test_styles"],
                f"{name}: how an attack transfers across styles",
                path=p,
            )
            images.append((caption.format(name), atomic_plot(path, draw)))
        return images
    rows = report["rows"]
    if len({r.get("train_style") for r in rows}) <= 1:
        return images
    for attacker in dict.fromkeys(r["attacker"] for r in rows):
        mine = [r for r in rows if r["attacker"] == attacker and r.get("status") == "done"]
        trains = list(dict.fromkeys(r["train_style"] for r in mine))
        tests = list(dict.fromkeys(r["style"] for r in mine))
        grid = [
            [mean_of(r["captcha_accuracy"] for r in mine if r["train_style"] == a and r["style"] == b) for b in tests]
            for a in trains
        ]
        draw = lambda p, attacker=attacker, grid=grid, trains=trains, tests=tests: plot_heatmap(
            grid, trains, tests, f"{attacker}: transfer", path=p
        )
        images.append((caption.format(attacker), atomic_plot(out / f"heatmap-{slug(attacker)}.png", draw)))
    return images


def _confusion(out: Path, steps: list[dict]) -> list[tuple[str, Path]]:
    """A sweep's confusion matrix of characters, summed over its steps."""
    done = [s for s in steps if s.get("status") == "done" and s.get("confusion_matrix")]
    if not done:
        return []
    total = np.sum([s["confusion_matrix"] for s in done], axis=0)
    draw = lambda p: plot_confusion(total, done[0]["confusion_labels"], path=p)
    return [
        ("Confusion matrix of characters over all steps (first attacker)", atomic_plot(out / "confusion.png", draw))
    ]


def _break_cost_section(costs: list[dict], keys: list[str]) -> Section:
    lines = ["| " + " | ".join(keys) + " | to reach 50% | to reach 90% |", "|---" * (len(keys) + 2) + "|"]
    for b in costs:
        reached = [b[f"labelled_for_{t}%"] for t in (50, 90)]
        lines.append(
            "| "
            + " | ".join(str(b.get(k)) for k in keys)
            + " | "
            + " | ".join("not reached" if n is None else str(n) for n in reached)
            + " |"
        )
    lines += [
        "",
        "Sizes not measured are not interpolated: a break cost is the smallest measured size "
        "that reaches the accuracy.",
    ]
    return Section("Break cost: labelled CAPTCHAs an attacker needs", lines)


def _cells_section(rows: list[dict]) -> Section:
    """Every cell as a table row; rates as percentages; a line per failed cell with its error."""
    columns = [k for k in dict.fromkeys(k for r in rows for k in r) if k not in ("error",)]
    is_rate = lambda c: c.endswith(("accuracy", "rate")) or c.startswith("ci95")
    lines = ["| " + " | ".join(columns) + " |", "|---" * len(columns) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(_pct(r.get(c)) if is_rate(c) else str(r.get(c, "")) for c in columns) + " |")
    if any(r.get("lower_bound") for r in rows):
        lines += [
            "",
            LOWER_BOUND_NOTE + " Rows with `lower_bound` True are such numbers; the curves draw them as hollow points.",
        ]
    for r in (r for r in rows if r.get("status") != "done"):
        named = [
            f"{k} = {r.get(k)}"
            for k in columns
            if k != "status" and not k.endswith(("accuracy", "rate")) and r.get(k) is not None
        ]
        lines += ["", "Failed: " + ", ".join(named) + f": {r.get('error') or 'failed'}"]
    return Section("Cells", lines)


def write_adversarial_report(out: Path, report: dict, clean: list[np.ndarray], sheet: list) -> None:
    """report.json, report.md, report.html, curves.png and perturbations.png into `out`."""
    plot_adversarial(report, path=out / "curves.png")
    perturbation_sheet(clean, sheet, path=out / "perturbations.png")
    sections = [Section(None, _adversarial_table(report))]
    if any(r.get("humans") is not None for r in report["rows"]):
        sections.append(Section("People at each eps", _people_table(report["rows"])))
    sections.append(Section("After each defence (preprocessing applied before reading)", _defence_table(report)))
    if report.get("retrained"):
        sections.append(Section("Adversarial training", _retrained_table(report)))
    sections.append(_readability(out, report))
    write_report(out, Report(f"Adversarial CAPTCHAs against {report['target']}", report, sections))


def _adversarial_table(report: dict) -> list[str]:
    names, target = report["attackers"], report["target"]
    lines = [
        f"- {report['count']} CAPTCHAs of style {report['style']} (strength {report['strength']}), "
        f"{report['method'].upper()} with {report['steps']} steps, the same CAPTCHAs at every eps",
        f"- {target} is attacked white-box; every other attacker reads the same perturbed images (transfer)",
        "",
        "| eps | " + " | ".join(names) + " | PSNR (dB) | SSIM | CAPTCHAs/s perturbed |",
        "|---" * (len(names) + 4) + "|",
    ]
    for r in report["rows"]:
        lines.append(
            f"| {r['eps_fraction']} | "
            + " | ".join(_pct(r["accuracy"][n]) for n in names)
            + f" | {_psnr(r)} | {r['ssim']} | {r['captchas_per_second'] or '-'} |"
        )
    return lines


def _psnr(row: dict) -> str:
    return "-" if row["psnr_db"] is None else str(row["psnr_db"])


def _people_table(rows: list[dict]) -> list[str]:
    lines = ["| eps | people: success | answers | median time, s | PSNR (dB) | SSIM |", "|---" * 6 + "|"]
    for r in rows:
        h = r.get("humans") or {}
        success = "no answers"
        if h:
            success = (
                f"{_pct(h['human_success'])} ({_interval(h['human_success_ci95'])})"
                + (" too few" if h["too_few_answers"] else "")
                + (" SIMULATED" if h["simulated"] else "")
            )
        seconds = h.get("human_median_seconds")
        lines.append(
            f"| {r['eps_fraction']} | {success} | {h.get('human_answers', 0)} | "
            f"{'-' if seconds is None else f'{seconds:.1f}'} | {_psnr(r)} | {r['ssim']} |"
        )
    return lines + [
        "",
        "People answered datasets of the same design perturbed at each eps (`generate "
        "--adversarial-against`); Wilson 95% intervals over answers.",
    ]


def _defence_table(report: dict) -> list[str]:
    defences = report["defences"]
    lines = ["| eps | attacker | " + " | ".join(defences) + " |", "|---" * (len(defences) + 2) + "|"]
    for r in report["rows"]:
        for n in report["attackers"]:
            lines.append(
                f"| {r['eps_fraction']} | {n} | " + " | ".join(_pct(r["defended"][n][d]) for d in defences) + " |"
            )
    return lines


def _retrained_table(report: dict) -> list[str]:
    rt, target = report["retrained"], report["target"]
    lines = [
        f"{target} fine-tuned on {rt['train_count']} CAPTCHAs, half of them perturbed against it at "
        f"eps {rt['eps']:g}/255 (validation accuracy {rt['val_accuracy']:.2%}), then attacked again "
        "through its own, new gradients:",
        "",
        "| eps | white-box accuracy before | after adversarial training |",
        "|---|---|---|",
    ]
    for r in report["rows"]:
        after = rt["white_box_accuracy"][format(r["eps"], "g")]
        lines.append(f"| {r['eps_fraction']} | {_pct(r['accuracy'][target])} | {_pct(after)} |")
    return lines


def _readability(out: Path, report: dict) -> Section:
    target = report["target"]
    smallest = next((r["eps_fraction"] for r in report["rows"] if r["accuracy"][target] <= 0.5), None)
    lines = [
        f"Smallest eps that brings {target} to 50% or below: {smallest or 'none measured'}.",
        "",
        "PSNR and SSIM compare each perturbed CAPTCHA with its clean original; they are proxies "
        "for readability only; whether people still read these CAPTCHAs is what a human study "
        "(`captchalab humans`, then `adversarial --humans`) measures.",
    ]
    return Section(
        "Readability",
        lines,
        [
            ("Accuracy against eps: every attacker, and the target behind each defence", out / "curves.png"),
            ("Clean CAPTCHAs, perturbed ones per eps, and the perturbations amplified", out / "perturbations.png"),
        ],
    )
