"""Reports: one typed shape (`Report`: the JSON, a list of `Section`s, the plots, cell tables)
and one writer that renders it to report.json, report.md and a self-contained report.html (the
Markdown rendered by markdown-it-py, plots inlined), and the attack report built in that shape
(the kind of the CAPTCHAs writes its tables). The study and adversarial reports are built in
study/report.py; plots are drawn by plots.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .fileio import atomic_dir, atomic_write_json, atomic_write_text
from .kinds import get_kind
from .plots import contact_sheet, plot_confusion


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
                body.append(
                    f'<figure><img src="{png_data_uri(path)}" alt="{html.escape(caption)}">'
                    f"<figcaption>{html.escape(caption)}</figcaption></figure>"
                )
    style = (
        "body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 10px;text-align:left}"
        "img{max-width:100%;border:1px solid #eee}figure{margin:1.5em 0}"
        "figcaption{color:#555;font-size:90%}li{margin:.2em 0}"
    )
    return (
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{html.escape(report.title)}</title>'
        f"<style>{style}</style></head><body>{''.join(body)}</body></html>\n"
    )


def write_report(folder: Path, report: Report, name: str = "report") -> None:
    """NAME.json, NAME.md, NAME.html (report.* by default) and the tables into `folder`, each file
    atomically."""
    for table, rows in report.tables.items():
        atomic_write_json(folder / f"{table}.json", rows)
        write_csv(folder / f"{table}.csv", rows)
    atomic_write_json(folder / f"{name}.json", report.data)
    atomic_write_text(folder / f"{name}.md", report.markdown())
    atomic_write_text(folder / f"{name}.html", render_html(report))


def png_data_uri(path: Path) -> str:
    import base64

    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode()


def seen_by_attacker(image: np.ndarray, item, kind: str = "text") -> np.ndarray:
    """A misread CAPTCHA as the attacker saw it, drawn by its kind (the boxes and crops a
    segmenting attacker cut; tiles with their probabilities; the image alone for whole readers)."""
    return get_kind(kind).seen(image, item)


def describe_verdict(verdict: dict | None) -> str:
    """A convergence verdict in one line, as the CLI and the quickstart page say it."""
    verdict = verdict or {}
    extends = (
        f"; it trained on from {verdict['extends']} on the same CAPTCHAs, so its own verdict decides"
        if verdict.get("extends")
        else ""
    )
    if verdict.get("converged") and "examples_seen" not in verdict:  # an ensemble: its members' runs did
        return f"converged ({verdict['stopped']})"
    if verdict.get("converged"):
        return (
            f"converged ({verdict['stopped']}, {verdict.get('rate_cuts', 0)} learning-rate cuts, "
            f"{verdict['examples_seen']:,} examples seen{extends})"
        )
    return "NOT converged, so a lower bound: " + "; ".join(verdict.get("reasons") or ["no verdict"]) + extends


def attack_sections(result: dict) -> list[Section]:
    """An attack result as sections: the sources and one table of every attacker (the kind's),
    then per attacker the kind's own measures, then what could not be read."""
    kind = get_kind(result.get("kind", "text"))
    head = []
    if "source" in result:
        src = result["source"]
        head.append(
            f"- source: `{src.get('generator') or src.get('dataset')}`"
            + (f" (strength {src['strength']}, seed {src['seed']})" if "strength" in src else "")
            + (f", charset `{src.get('charset')}`" if kind.characters else "")
        )
    else:
        head.append(f"- styles: {', '.join(result.get('sources', {}))}")
    sections = [Section(None, head + kind.report_table(result))]
    for name, r in result["per_attacker"].items():
        unanswered = (
            ["", "Unanswered (counted as failed): " + ", ".join(f"{why} ({n})" for why, n in r["failures"].items())]
            if r.get("failures")
            else []
        )
        sections.append(Section(name, kind.attacker_lines(r) + unanswered))
    tail = []
    if result.get("skipped_files"):
        reasons = result.get("skipped_reasons", {})
        tail += [
            "Skipped (unusable images): "
            + ", ".join(f"`{f}` ({reasons.get(f) or 'unreadable'})" for f in result["skipped_files"][:50])
            + (f" and {len(result['skipped_files']) - 50} more" if len(result["skipped_files"]) > 50 else ""),
            "",
        ]
    if result.get("rejected_rows"):
        tail += [
            "Rejected labels.csv rows: "
            + ", ".join(f"`{f}` ({why})" for f, why in result["rejected_rows"][:50])
            + (f" and {len(result['rejected_rows']) - 50} more" if len(result["rejected_rows"]) > 50 else "")
        ]
    if tail:
        sections.append(Section("What could not be read", tail))
    return sections


def slug(text: str) -> str:
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
            stem = slug(name)
            if "confusion_matrix" in r:
                plot_confusion(
                    r["confusion_matrix"],
                    r["confusion_labels"],
                    path=tmp / f"confusion-{stem}.png",
                    title=f"{name}: confusion of characters (CAPTCHAs read with the right length)",
                )
                by_name[name].images.append((f"{name}: confusion matrix", tmp / f"confusion-{stem}.png"))
            misread = examples.get(name) or []
            if misread:
                contact_sheet(
                    [seen_by_attacker(im, it, kind) for im, it in misread],
                    [get_kind(kind).caption(it) for _, it in misread],
                    path=tmp / f"misread-{stem}.png",
                    cell_height=96 if "confusion_matrix" in r else 220,
                )
                by_name[name].images.append(
                    (f"{name}: misread CAPTCHAs (truth -> guess) as the attacker saw them", tmp / f"misread-{stem}.png")
                )
        write_report(tmp, Report("Attack report", result, sections))


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
