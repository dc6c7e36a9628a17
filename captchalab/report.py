"""Reports: contact sheets, plots, and report.json / report.md / report.html written atomically."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from .fileio import atomic_write_bytes


def contact_sheet(images: list[np.ndarray], captions: list[str], path: Path, columns: int = 4,
                  cell_height: int = 64) -> None:
    """A grid of images, each with its caption underneath, saved as PNG."""
    if not images:
        return
    cells = []
    for image, caption in zip(images, captions):
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        scale = cell_height / image.shape[0]
        image = cv2.resize(image, (max(1, round(image.shape[1] * scale)), cell_height),
                           interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_NEAREST)
        cells.append((image, caption))
    width = max(max(im.shape[1] for im, _ in cells), 160) + 8
    rows = [cells[i:i + columns] for i in range(0, len(cells), columns)]
    sheet = np.full((len(rows) * (cell_height + 26) + 4, columns * width + 4, 3), 255, np.uint8)
    for r, row in enumerate(rows):
        for c, (image, caption) in enumerate(row):
            y, x = 4 + r * (cell_height + 26), 4 + c * width
            sheet[y:y + cell_height, x:x + image.shape[1]] = image
            cv2.putText(sheet, caption, (x, y + cell_height + 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                        (0, 0, 0), 1, cv2.LINE_AA)
    ok, png = cv2.imencode(".png", sheet)
    atomic_write_bytes(path, png.tobytes())


def pyplot():
    """matplotlib.pyplot on the Agg backend: files only, no display needed."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def png_data_uri(path: Path) -> str:
    import base64
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode()


def plot_confusion(matrix, path: Path, title: str = "Confusion matrix (characters)") -> None:
    plt = pyplot()
    m = np.asarray(matrix)
    fig, ax = plt.subplots(figsize=(5.2, 4.5), dpi=100)
    im = ax.imshow(m, cmap="Blues")
    for (i, j), v in np.ndenumerate(m):
        if v:
            ax.text(j, i, str(v), ha="center", va="center", fontsize=7,
                    color="white" if v > m.max() / 2 else "black")
    ax.set_xlabel("predicted digit")
    ax.set_ylabel("true digit")
    ax.set_xticks(range(10))
    ax.set_yticks(range(10))
    ax.set_title(title)
    fig.colorbar(im, ax=ax, label="characters")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def attack_markdown(result: dict, title: str) -> str:
    lines = [f"# {title}", ""]
    if "source" in result:
        src = result["source"]
        lines.append(f"- source: `{src.get('generator') or src.get('dataset')}`"
                     + (f" (strength {src['strength']}, seed {src['seed']})" if "strength" in src else ""))
    else:
        lines.append(f"- styles: {', '.join(result.get('per_style', {}))}")
    lines += [
              f"- model: `{result.get('model')}`",
              f"- CAPTCHAs read: {result['count']} (skipped: {result['skipped']})", "",
              "| measure | value |", "|---|---|",
              f"| CAPTCHA accuracy | {result['captcha_accuracy']:.2%} |",
              f"| character accuracy | {result['char_accuracy']:.2%} |",
              f"| segmentation rate (right number of pieces) | {result['segmentation_rate']:.2%} |"]
    if "segmentation_box_rate" in result:
        lines.append(f"| segmentation matching the generator's boxes | {result['segmentation_box_rate']:.2%} |")
    if "captchas_per_second" in result:
        lines.append(f"| throughput | {result['captchas_per_second']:.0f} CAPTCHAs/s |")
    lines += ["", "Per position: " + ", ".join(
        f"{i + 1}: {a:.2%}" for i, a in enumerate(result["per_position_accuracy"]) if a is not None)]
    if result.get("per_style"):
        lines += ["", "| style | CAPTCHA acc. | char acc. | segmentation | count |", "|---|---|---|---|---|"]
        for style, r in result["per_style"].items():
            lines.append(f"| {style} | {r['captcha_accuracy']:.2%} | {r['char_accuracy']:.2%} | "
                         f"{r['segmentation_rate']:.2%} | {r['count']} |")
    if result.get("skipped_files"):
        lines += ["", "Skipped (unreadable images): " + ", ".join(f"`{f}`" for f in result["skipped_files"][:50])]
    if result.get("rejected_rows"):
        lines += ["", "Rejected labels.csv rows: " + ", ".join(
            f"`{f}` ({why})" for f, why in result["rejected_rows"][:50])]
    lines += ["", "A character counts as read only when its CAPTCHA was cut into the right number "
              "of pieces and the piece at its position reads right.", ""]
    return "\n".join(lines)


def html_page(title: str, markdown_text: str, images: list[tuple[str, Path]]) -> str:
    """A self-contained page: the report's text plus its plots inlined as data URIs."""
    import html
    body = []
    in_table = False
    for line in markdown_text.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if set("".join(cells)) <= set("-: "):
                continue
            tag = "th" if not in_table else "td"
            if not in_table:
                body.append("<table>")
                in_table = True
            body.append("<tr>" + "".join(f"<{tag}>{html.escape(c.strip('`'))}</{tag}>" for c in cells) + "</tr>")
            continue
        if in_table:
            body.append("</table>")
            in_table = False
        if line.startswith("# "):
            body.append(f"<h1>{html.escape(line[2:])}</h1>")
        elif line.startswith("## "):
            body.append(f"<h2>{html.escape(line[3:])}</h2>")
        elif line.startswith("- "):
            body.append(f"<p class=item>{html.escape(line[2:].replace('`', ''))}</p>")
        elif line.strip():
            body.append(f"<p>{html.escape(line.replace('`', ''))}</p>")
    if in_table:
        body.append("</table>")
    for caption, path in images:
        if Path(path).is_file():
            body.append(f"<figure><img src=\"{png_data_uri(path)}\" alt=\"{html.escape(caption)}\">"
                        f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    style = ("body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}"
             "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 10px;text-align:left}"
             "img{max-width:100%;border:1px solid #eee}figure{margin:1.5em 0}"
             "figcaption{color:#555;font-size:90%}p.item{margin:.2em 0}")
    return (f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body>{''.join(body)}</body></html>\n")


def write_attack_report(out: Path, result: dict, misread: list[tuple[np.ndarray, str]]) -> None:
    """report.json, report.md, report.html, misread.png and confusion.png, atomically; an earlier
    report in `out` is replaced, any other non-empty folder is refused."""
    from .fileio import atomic_dir, to_json
    title = "Attack report"
    with atomic_dir(out, ours="report.json") as tmp:
        (tmp / "report.json").write_text(to_json(result))
        md = attack_markdown(result, title)
        (tmp / "report.md").write_text(md)
        images = []
        plot_confusion(result["confusion_matrix"], tmp / "confusion.png")
        images.append(("Confusion matrix of characters in correctly segmented CAPTCHAs", tmp / "confusion.png"))
        if misread:
            contact_sheet([im for im, _ in misread], [c for _, c in misread], tmp / "misread.png")
            images.append(("Misread CAPTCHAs (truth -> guess)", tmp / "misread.png"))
        (tmp / "report.html").write_text(html_page(title, md, images))


def plot_sweep(report: dict, path: Path) -> None:
    """Accuracy vs the swept value: the three rates, plus the retrained attacker when present."""
    plt = pyplot()
    done = [s for s in report["steps"] if s.get("status") == "done"]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    labels = {"captcha_accuracy": "CAPTCHA accuracy", "char_accuracy": "character accuracy",
              "segmentation_rate": "segmentation rate"}
    for (key, label), color in zip(labels.items(), ("#d62728", "#1f77b4", "#2ca02c")):
        ax.plot([s["value"] for s in done], [100 * s[key] for s in done], marker="o", color=color,
                label=f"{label} (fixed attacker)")
        retrained = [s for s in done if "retrained" in s]
        if retrained and key != "segmentation_rate":
            ax.plot([s["value"] for s in retrained], [100 * s["retrained"][key] for s in retrained],
                    marker="s", linestyle="--", color=color, label=f"{label} (retrained attacker)")
    for s in report["steps"]:
        if s.get("status") == "failed":
            ax.axvline(s["value"], color="grey", linestyle=":", label="failed step")
    ax.set_xlabel(f"{report['style']} {report['knob']}")
    ax.set_ylabel("rate (%)")
    ax.set_ylim(-2, 102)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")
    ax.set_title(f"Attack success as {report['style']} {report['knob']} grows", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_heatmap(matrix, rows: list[str], columns: list[str], title: str, path: Path) -> None:
    plt = pyplot()
    m = 100 * np.asarray(matrix, float)
    fig, ax = plt.subplots(figsize=(1.3 * len(columns) + 2.5, 1.0 * len(rows) + 1.8), dpi=100)
    im = ax.imshow(m, cmap="RdYlGn", vmin=0, vmax=100)
    for (i, j), v in np.ndenumerate(m):
        ax.text(j, i, f"{v:.1f}", ha="center", va="center", fontsize=9)
    ax.set_xticks(range(len(columns)))
    ax.set_xticklabels(columns, rotation=30, ha="right")
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(rows)
    ax.set_xlabel("attacked style (test)")
    ax.set_ylabel("attacker trained on")
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, label="CAPTCHA accuracy (%)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _rate(v) -> str:
    return f"{v:.2%}" if isinstance(v, (int, float)) else "-"


def atomic_plot(plot, path: Path, *args) -> Path:
    """Run `plot(*args, tmp_path)` and move the PNG into place only when it is complete."""
    import os
    tmp = path.with_name(f".{path.name}.tmp.png")
    try:
        plot(*args, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_sweep_report(out: Path, report: dict) -> None:
    """report.json, report.md, report.html and plots in the sweep folder, each written atomically."""
    from .fileio import atomic_write_json, atomic_write_text
    lines = [f"# Sweep: {report['style']} {report['knob']}", "",
             f"- model: `{report['config']['model']}`",
             f"- {report['config']['count']} CAPTCHAs per step, retrain: {report['config']['retrain']}", "",
             "| value | status | CAPTCHA acc. | char acc. | segmentation | retrained CAPTCHA acc. | count |",
             "|---|---|---|---|---|---|---|"]
    for s in report["steps"]:
        lines.append(f"| {s['value']} | {s['status']} | {_rate(s.get('captcha_accuracy'))} | "
                     f"{_rate(s.get('char_accuracy'))} | {_rate(s.get('segmentation_rate'))} | "
                     f"{_rate(s.get('retrained', {}).get('captcha_accuracy'))} | {s.get('count', '-')} |")
    for s in report["steps"]:
        if s["status"] == "failed":
            lines += ["", f"Step {s['step']} ({report['knob']} = {s['value']}) failed: {s['error']}"]
    md = "\n".join(lines) + "\n"
    images = [(f"Accuracy vs {report['knob']}", atomic_plot(plot_sweep, out / "curve.png", report))]
    done = [s for s in report["steps"] if s["status"] == "done"]
    if done:
        total = np.sum([s["confusion_matrix"] for s in done], axis=0)
        images.append(("Confusion matrix of characters over all steps (fixed attacker)",
                       atomic_plot(plot_confusion, out / "confusion.png", total)))
    images += [(f"{report['knob']} = {s['value']}: examples (truth; misread ones as truth -> guess)",
                out / s["examples"]) for s in done]
    atomic_write_json(out / "report.json", report)
    atomic_write_text(out / "report.md", md)
    atomic_write_text(out / "report.html", html_page(f"Sweep: {report['style']} {report['knob']}", md, images))


def write_matrix_report(out: Path, report: dict) -> None:
    from .fileio import atomic_write_json, atomic_write_text
    rows, cols = report["train_styles"], report["test_styles"]
    heatmap = atomic_plot(plot_heatmap, out / "heatmap.png", report["matrix"]["captcha_accuracy"], rows, cols,
                          "How an attack transfers across generators")
    lines = ["# Transfer matrix: CAPTCHA accuracy", "",
             f"- {report['count']} test CAPTCHAs per cell, {report['train_count']} training CAPTCHAs per attacker",
             "", "| trained on \\ attacked | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for r, row in zip(rows, report["matrix"]["captcha_accuracy"]):
        lines.append(f"| {r} | " + " | ".join(_rate(v) for v in row) + " |")
    md = "\n".join(lines) + "\n"
    atomic_write_json(out / "report.json", report)
    atomic_write_text(out / "report.md", md)
    atomic_write_text(out / "report.html", html_page("Transfer matrix", md,
                                                     [("CAPTCHA accuracy per (training, test) style", heatmap)]))
