"""Reports: one typed shape (`Report`: the JSON, a list of `Section`s, the plots, cell tables)
and one writer that renders it to report.json, report.md and a self-contained report.html (the
Markdown rendered by markdown-it-py, plots inlined). The attack, study and adversarial reports
are builders of that shape (their plots are drawn by plots.py); the kind of the CAPTCHAs writes
an attack report's tables.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .fileio import atomic_dir, atomic_write_json, atomic_write_text
from .kinds import get_kind
from .kinds.base import LOWER_BOUND_NOTE
from .kinds.base import interval as _interval
from .kinds.base import pct as _pct
from .plots import (
    atomic_plot,
    contact_sheet,
    group_rows,
    mean_of,
    perturbation_sheet,
    plot_adversarial,
    plot_confusion,
    plot_curve,
    plot_heatmap,
    series_keys,
)


@dataclass
class Section:
    """A part of a report: an optional heading, Markdown lines, and the plots shown after them."""
    title: str | None
    lines: list[str] = field(default_factory=list)
    images: list[tuple[str, Path]] = field(default_factory=list)  # (caption, PNG file)


@dataclass
class Report:
    """Everything one report holds: `data` is report.json; `tables` are written as NAME.json and
    NAME.csv (one row per dict; pandas reads either)."""
    title: str
    data: dict
    sections: list[Section]
    tables: dict[str, list[dict]] = field(default_factory=dict)

    def markdown(self) -> str:
        lines = [f"# {self.title}", ""]
        for section in self.sections:
            if not section.lines and not section.images:
                continue
            if section.title:
                lines += [f"## {section.title}", ""]
            lines += section.lines + [""]
        return "\n".join(lines).rstrip() + "\n"


def render_html(report: Report) -> str:
    """A self-contained page: each section's Markdown as HTML, its plots inlined as data URIs."""
    import html

    from markdown_it import MarkdownIt
    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    body = [f"<h1>{html.escape(report.title)}</h1>"]
    for section in report.sections:
        if not section.lines and not section.images:
            continue
        if section.title:
            body.append(f"<h2>{html.escape(section.title)}</h2>")
        body.append(md.render("\n".join(section.lines)))
        for caption, path in section.images:
            if Path(path).is_file():
                body.append(f"<figure><img src=\"{png_data_uri(path)}\" alt=\"{html.escape(caption)}\">"
                            f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    style = ("body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}"
             "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 10px;text-align:left}"
             "img{max-width:100%;border:1px solid #eee}figure{margin:1.5em 0}"
             "figcaption{color:#555;font-size:90%}li{margin:.2em 0}")
    return (f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{html.escape(report.title)}</title>"
            f"<style>{style}</style></head><body>{''.join(body)}</body></html>\n")


def write_report(folder: Path, report: Report) -> None:
    """report.json, report.md, report.html and the tables into `folder`, each file atomically."""
    for name, rows in report.tables.items():
        atomic_write_json(folder / f"{name}.json", rows)
        write_csv(folder / f"{name}.csv", rows)
    atomic_write_json(folder / "report.json", report.data)
    atomic_write_text(folder / "report.md", report.markdown())
    atomic_write_text(folder / "report.html", render_html(report))


def png_data_uri(path: Path) -> str:
    import base64
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode()


def seen_by_attacker(image: np.ndarray, item, kind: str = "text") -> np.ndarray:
    """A misread CAPTCHA as the attacker saw it, drawn by its kind (the boxes and crops a
    segmenting attacker cut; tiles with their probabilities; the image alone for whole readers)."""
    image = image if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    return get_kind(kind).seen(image, item)


def describe_verdict(verdict: dict | None) -> str:
    """A convergence verdict in one line, as the CLI and the quickstart page say it."""
    verdict = verdict or {}
    extends = (f"; it trained on from {verdict['extends']} on the same CAPTCHAs, so its own verdict decides"
               if verdict.get("extends") else "")
    if verdict.get("converged") and "examples_seen" not in verdict:  # an ensemble: its members' runs did
        return f"converged ({verdict['stopped']})"
    if verdict.get("converged"):
        return (f"converged ({verdict['stopped']}, {verdict.get('rate_cuts', 0)} learning-rate cuts, "
                f"{verdict['examples_seen']:,} examples seen{extends})")
    return "NOT converged, so a lower bound: " + "; ".join(verdict.get("reasons") or ["no verdict"]) + extends


def attack_sections(result: dict) -> list[Section]:
    """An attack result as sections: the sources and one table of every attacker (the kind's),
    then per attacker the kind's own measures, then what could not be read."""
    kind = get_kind(result.get("kind", "text"))
    head = []
    if "source" in result:
        src = result["source"]
        head.append(f"- source: `{src.get('generator') or src.get('dataset')}`"
                    + (f" (strength {src['strength']}, seed {src['seed']})" if "strength" in src else "")
                    + (f", charset `{src.get('charset')}`" if kind.characters else ""))
    else:
        head.append(f"- styles: {', '.join(result.get('sources', {}))}")
    sections = [Section(None, head + kind.report_table(result))]
    for name, r in result["per_attacker"].items():
        sections.append(Section(name, kind.attacker_lines(r)))
    tail = []
    if result.get("skipped_files"):
        reasons = result.get("skipped_reasons", {})
        tail += ["Skipped (unusable images): " + ", ".join(
            f"`{f}` ({reasons.get(f) or 'unreadable'})" for f in result["skipped_files"][:50])
            + (f" and {len(result['skipped_files']) - 50} more" if len(result["skipped_files"]) > 50 else ""), ""]
    if result.get("rejected_rows"):
        tail += ["Rejected labels.csv rows: " + ", ".join(
            f"`{f}` ({why})" for f, why in result["rejected_rows"][:50])
            + (f" and {len(result['rejected_rows']) - 50} more" if len(result["rejected_rows"]) > 50 else "")]
    if tail:
        sections.append(Section("What could not be read", tail))
    return sections


def _slug(text: str) -> str:
    import re
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "attacker"


def write_attack_report(out: Path, result: dict, examples: dict[str, list], force: bool = False) -> None:
    """The attack report, with per attacker a confusion matrix and the misread CAPTCHAs as the
    attacker saw them, into `out` atomically; an earlier report in `out` is replaced, any other
    non-empty folder is refused unless `force`."""
    sections = attack_sections(result)
    kind = result.get("kind", "text")
    by_name = {section.title: section for section in sections}
    with atomic_dir(out, force, ours="report.json") as tmp:
        for name, r in result["per_attacker"].items():
            slug = _slug(name)
            if "confusion_matrix" in r:
                plot_confusion(r["confusion_matrix"], r["confusion_labels"], path=tmp / f"confusion-{slug}.png",
                               title=f"{name}: confusion of characters (CAPTCHAs read with the right length)")
                by_name[name].images.append((f"{name}: confusion matrix", tmp / f"confusion-{slug}.png"))
            misread = examples.get(name) or []
            if misread:
                contact_sheet([seen_by_attacker(im, it, kind) for im, it in misread],
                              [get_kind(kind).caption(it) for _, it in misread],
                              path=tmp / f"misread-{slug}.png", cell_height=96 if "confusion_matrix" in r else 220)
                by_name[name].images.append((f"{name}: misread CAPTCHAs (truth -> guess) as the attacker saw them",
                                             tmp / f"misread-{slug}.png"))
        write_report(tmp, Report("Attack report", result, sections))


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


def write_csv(path: Path, rows: list[dict]) -> None:
    import csv
    import io
    columns = list(dict.fromkeys(k for r in rows for k in r))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    from .fileio import atomic_write_text
    atomic_write_text(path, buffer.getvalue())


def write_study_report(out: Path, title: str, report: dict, axes: list[str],
                      extra_images: list[tuple[str, Path]] = (), extra_sections: list[Section] = ()) -> None:
    """The one report of every grid (sweep, matrix, study): report.json, the cell table as
    cells.json and cells.csv (one row per cell and attacker), report.md, report.html, and its
    plots: a curve per swept coordinate (one line per attacker), heat maps for style x style,
    break costs for a training-size axis."""
    rows = report["rows"]
    plots = Section("Plots")
    swept = [a for a in axes if len({r.get(a) for r in rows}) > 1 or report.get("kind") == "sweep"]
    for axis in swept:
        name = "curve.png" if len(swept) == 1 else f"curve-{axis.replace('.', '-')}.png"
        plots.images.append((f"Accuracy against {axis}", atomic_plot(out / name, lambda path, axis=axis: plot_curve(
            rows, axis, axes, f"{title}: accuracy against {axis}", path=path))))
    sections = []
    if "train_count" in axes:
        report["break_cost"] = break_cost(rows)
        keys = series_keys(rows, "train_count", axes)
        lines = ["| " + " | ".join(keys) + " | to reach 50% | to reach 90% |", "|---" * (len(keys) + 2) + "|"]
        for b in report["break_cost"]:
            reached = [b[f"labelled_for_{t}%"] for t in (50, 90)]
            lines.append("| " + " | ".join(str(b.get(k)) for k in keys) + " | " +
                         " | ".join("not reached" if n is None else str(n) for n in reached) + " |")
        lines += ["", "Sizes not measured are not interpolated: a break cost is the smallest measured size "
                  "that reaches the accuracy."]
        sections.append(Section("Break cost: labelled CAPTCHAs an attacker needs", lines))
    if report.get("matrix"):
        for k, (name, matrix) in enumerate((report.get("matrices") or {report["attacker"]: report["matrix"]}).items()):
            path = out / ("heatmap.png" if k == 0 else f"heatmap-{_slug(name)}.png")
            plots.images.append((f"{name}: CAPTCHA accuracy per (training, test) style", atomic_plot(
                path, lambda p, name=name, matrix=matrix: plot_heatmap(
                    matrix["captcha_accuracy"], report["train_styles"], report["test_styles"],
                    f"{name}: how an attack transfers across styles", path=p))))
    elif len({r.get("train_style") for r in rows}) > 1:
        for attacker in dict.fromkeys(r["attacker"] for r in rows):
            mine = [r for r in rows if r["attacker"] == attacker and r.get("status") == "done"]
            trains, tests = list(dict.fromkeys(r["train_style"] for r in mine)), list(dict.fromkeys(r["style"] for r in mine))
            grid = [[mean_of(r["captcha_accuracy"] for r in mine if r["train_style"] == a and r["style"] == b)
                     for b in tests] for a in trains]
            plots.images.append((f"{attacker}: CAPTCHA accuracy per (training, test) style", atomic_plot(
                out / f"heatmap-{_slug(attacker)}.png", lambda p, attacker=attacker, grid=grid, trains=trains,
                tests=tests: plot_heatmap(grid, trains, tests, f"{attacker}: transfer", path=p))))
    if report.get("kind") == "sweep":
        done = [s for s in report["steps"] if s.get("status") == "done" and s.get("confusion_matrix")]
        if done:
            total = np.sum([s["confusion_matrix"] for s in done], axis=0)
            plots.images.append(("Confusion matrix of characters over all steps (first attacker)", atomic_plot(
                out / "confusion.png", lambda p: plot_confusion(total, done[0]["confusion_labels"], path=p))))
    columns = [k for k in dict.fromkeys(k for r in rows for k in r) if k not in ("error",)]
    lines = ["| " + " | ".join(columns) + " |", "|---" * len(columns) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(_pct(r.get(c)) if c.endswith(("accuracy", "rate")) or c.startswith("ci95")
                                       else str(r.get(c, "")) for c in columns) + " |")
    if any(r.get("lower_bound") for r in rows):
        lines += ["", LOWER_BOUND_NOTE + " Rows with `lower_bound` True are such numbers; the curves draw "
                  "them as hollow points."]
    for r in (r for r in rows if r.get("status") != "done"):
        lines += ["", "Failed: " + ", ".join(f"{k} = {r.get(k)}" for k in columns if k not in ("status",)
                                             and not k.endswith(("accuracy", "rate")) and r.get(k) is not None)
                  + f": {r.get('error') or 'failed'}"]
    sections.append(Section("Cells", lines))
    plots.images += list(extra_images)
    sections += list(extra_sections)
    sections.append(plots)
    write_report(out, Report(title, report, sections, tables={"cells": rows}))


def write_adversarial_report(out: Path, report: dict, clean: list[np.ndarray], sheet: list) -> None:
    """report.json, report.md, report.html, curves.png and perturbations.png into `out`."""
    plot_adversarial(report, path=out / "curves.png")
    perturbation_sheet(clean, sheet, path=out / "perturbations.png")
    names, target = report["attackers"], report["target"]
    lines = [f"- {report['count']} CAPTCHAs of style {report['style']} (strength {report['strength']}), "
             f"{report['method'].upper()} with {report['steps']} steps, the same CAPTCHAs at every eps",
             f"- {target} is attacked white-box; every other attacker reads the same perturbed images (transfer)",
             "", "| eps | " + " | ".join(names) + " | PSNR (dB) | SSIM | CAPTCHAs/s perturbed |",
             "|---" * (len(names) + 4) + "|"]
    for r in report["rows"]:
        lines.append(f"| {r['eps_fraction']} | " + " | ".join(_pct(r["accuracy"][n]) for n in names) +
                     f" | {r['psnr_db'] if r['psnr_db'] is not None else '-'} | {r['ssim']} | "
                     f"{r['captchas_per_second'] or '-'} |")
    sections = [Section(None, lines)]
    if any(r.get("humans") is not None for r in report["rows"]):
        lines = ["| eps | people: success | answers | median time, s | PSNR (dB) | SSIM |", "|---" * 6 + "|"]
        for r in report["rows"]:
            h = r.get("humans") or {}
            seconds = h.get("human_median_seconds")
            lines.append(f"| {r['eps_fraction']} | " + (f"{_pct(h['human_success'])} ({_interval(h['human_success_ci95'])})"
                                                        + (" too few" if h["too_few_answers"] else "")
                                                        + (" SIMULATED" if h["simulated"] else "") if h else "no answers")
                         + f" | {h.get('human_answers', 0)} | {'-' if seconds is None else f'{seconds:.1f}'} | "
                         f"{r['psnr_db'] if r['psnr_db'] is not None else '-'} | {r['ssim']} |")
        lines += ["", "People answered datasets of the same design perturbed at each eps (`generate "
                  "--adversarial-against`); Wilson 95% intervals over answers."]
        sections.append(Section("People at each eps", lines))
    lines = ["| eps | attacker | " + " | ".join(report["defences"]) + " |", "|---" * (len(report["defences"]) + 2) + "|"]
    for r in report["rows"]:
        for n in names:
            lines.append(f"| {r['eps_fraction']} | {n} | " + " | ".join(_pct(r["defended"][n][d])
                                                                     for d in report["defences"]) + " |")
    sections.append(Section("After each defence (preprocessing applied before reading)", lines))
    if report.get("retrained"):
        rt = report["retrained"]
        lines = [f"{target} fine-tuned on {rt['train_count']} CAPTCHAs, half of them perturbed against it at "
                 f"eps {rt['eps']:g}/255 (validation accuracy {rt['val_accuracy']:.2%}), then attacked again "
                 "through its own, new gradients:", "",
                 "| eps | white-box accuracy before | after adversarial training |", "|---|---|---|"]
        for r in report["rows"]:
            after = rt["white_box_accuracy"][format(r["eps"], "g")]
            lines.append(f"| {r['eps_fraction']} | {_pct(r['accuracy'][target])} | {_pct(after)} |")
        sections.append(Section("Adversarial training", lines))
    smallest = next((r["eps_fraction"] for r in report["rows"] if r["accuracy"][target] <= 0.5), None)
    sections.append(Section("Readability", [
        f"Smallest eps that brings {target} to 50% or below: {smallest or 'none measured'}.", "",
        "PSNR and SSIM compare each perturbed CAPTCHA with its clean original; they are proxies "
        "for readability only; whether people still read these CAPTCHAs is what a human study "
        "(`captchalab humans`, then `adversarial --humans`) measures."], [
        ("Accuracy against eps: every attacker, and the target behind each defence", out / "curves.png"),
        ("Clean CAPTCHAs, perturbed ones per eps, and the perturbations amplified", out / "perturbations.png")]))
    write_report(out, Report(f"Adversarial CAPTCHAs against {target}", report, sections))
