"""The plots and picture sheets reports show: contact sheets of CAPTCHAs, confusion matrices,
accuracy curves against a swept coordinate, transfer heat maps and the adversarial curves; each
written to a PNG file (atomically, through `atomic_plot` or the sheet's own write)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from .fileio import atomic_write_bytes, naming
from .kinds import get_kind


def contact_sheet(
    images: list[np.ndarray], captions: list[str], *, path: Path, columns: int = 4, cell_height: int = 64
) -> None:
    """A grid of images, each with its caption underneath, saved as PNG."""
    if not images:
        return
    cells = []
    for image, caption in zip(images, captions):
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        scale = cell_height / image.shape[0]
        image = cv2.resize(
            image,
            (max(1, round(image.shape[1] * scale)), cell_height),
            interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_NEAREST,
        )
        cells.append((image, caption))
    width = max(max(im.shape[1] for im, _ in cells), 160) + 8
    rows = [cells[i : i + columns] for i in range(0, len(cells), columns)]
    sheet = np.full((len(rows) * (cell_height + 26) + 4, columns * width + 4, 3), 255, np.uint8)
    for r, row in enumerate(rows):
        for c, (image, caption) in enumerate(row):
            y, x = 4 + r * (cell_height + 26), 4 + c * width
            sheet[y : y + cell_height, x : x + image.shape[1]] = image
            cv2.putText(
                sheet, caption, (x, y + cell_height + 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA
            )
    ok, png = cv2.imencode(".png", sheet)
    atomic_write_bytes(path, png.tobytes())


def pyplot():
    """matplotlib.pyplot on the Agg backend: files only, no display needed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_confusion(matrix, labels: str, *, path: Path, title: str = "Confusion matrix (characters)") -> None:
    """Truth rows, guess columns, in charset order; counts printed only where they stay legible
    (up to 20 classes), a logarithmic colour scale so rare confusions still show at 36 or 62."""
    from matplotlib.colors import LogNorm

    plt = pyplot()
    m = np.asarray(matrix)
    n = len(labels)
    size = min(13.0, 3.0 + 0.16 * n)
    fig, ax = plt.subplots(figsize=(size + 1.2, size), dpi=100)
    im = ax.imshow(np.where(m > 0, m, np.nan), cmap="Blues", norm=LogNorm(vmin=1, vmax=max(2, m.max())))
    if n <= 20:
        for (i, j), v in np.ndenumerate(m):
            if v:
                ax.text(
                    j, i, str(v), ha="center", va="center", fontsize=7, color="white" if v > m.max() / 2 else "black"
                )
    ticks = range(n)
    ax.set_xticks(ticks)
    ax.set_yticks(ticks)
    ax.set_xticklabels(list(labels), fontsize=8 if n <= 36 else 6)
    ax.set_yticklabels(list(labels), fontsize=8 if n <= 36 else 6)
    ax.set_xlabel("read as")
    ax.set_ylabel("true character")
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, label="characters (log scale)", fraction=0.04)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def mean_of(values):
    values = [v for v in values if isinstance(v, (int, float))]
    return float(np.mean(values)) if values else None


def group_rows(rows: list[dict], keys: list[str]) -> dict[tuple, list[dict]]:
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault(tuple(row.get(k) for k in keys), []).append(row)
    return groups


def series_keys(rows: list[dict], axis: str, axes: list[str]) -> list[str]:
    """What tells the lines of a curve apart: the attacker, and every categorical coordinate that
    varies (style, train_style), and the unlabelled count (a break cost counts labels only, so each
    unlabelled count is its own curve); other numeric coordinates are averaged."""
    varying = [k for k in ("style", "train_style", "unlabelled_count") if len({r.get(k) for r in rows}) > 1]
    return ["attacker"] + [k for k in varying if k != axis]


def plot_curve(rows: list[dict], axis: str, axes: list[str], title: str, *, path: Path) -> None:
    """CAPTCHA accuracy (solid) and the kind's per-unit accuracy (dotted: characters, tiles)
    against one swept coordinate, one colour per attacker (and style), averaged over seeds;
    failed cells are gaps."""
    plt = pyplot()
    done = [r for r in rows if r.get("status") == "done" and isinstance(r.get(axis), (int, float))]
    keys = series_keys(rows, axis, axes)
    fig, ax = plt.subplots(figsize=(7.5, 4.2), dpi=100)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, (series, members) in enumerate(sorted(group_rows(done, keys).items(), key=lambda kv: str(kv[0]))):
        xs = sorted({m[axis] for m in members})
        label = ", ".join(str(v) for v in series if v not in (None, ""))
        color = colors[k % len(colors)]
        at = {x: [m for m in members if m[axis] == x] for x in xs}
        unit = get_kind(members[0].get("kind") or "text").unit
        # a kind scored per challenge only (sliders, rotations) has no second rate to draw
        rates = [("captcha_accuracy", "-", "CAPTCHA")] + ([("char_accuracy", ":", unit)] if unit != "challenge" else [])
        for rate, style, name in rates:
            ys = [mean_of(m[rate] for m in at[x]) for x in xs]
            ax.plot(
                xs,
                [100 * y if y is not None else np.nan for y in ys],
                linestyle=style,
                color=color,
                label=f"{label}: {name}",
            )
            for x, y in zip(xs, ys):  # hollow: a lower bound (the attacker had not converged)
                hollow = any(m.get("lower_bound") for m in at[x])
                ax.plot(
                    [x],
                    [100 * y if y is not None else np.nan],
                    marker="o",
                    color=color,
                    markerfacecolor="white" if hollow else color,
                )
        single = [x for x in xs if len(at[x]) == 1 and at[x][0].get("ci95_low") is not None]
        if single:  # the Wilson 95% interval of one cell's CAPTCHA accuracy
            ax.fill_between(
                single,
                [100 * at[x][0]["ci95_low"] for x in single],
                [100 * at[x][0]["ci95_high"] for x in single],
                color=color,
                alpha=0.12,
                linewidth=0,
            )
    if any(r.get("lower_bound") for r in done):
        ax.plot(
            [],
            [],
            marker="o",
            linestyle="",
            color="grey",
            markerfacecolor="white",
            label="hollow: lower bound (attacker had not converged)",
        )
    for r in rows:
        if r.get("status") != "done" and isinstance(r.get(axis), (int, float)):
            ax.axvline(r[axis], color="grey", linestyle=":", linewidth=1)
    if axis == "train_count" and any(r.get(axis, 0) > 0 for r in done):
        ax.set_xscale("symlog", linthresh=10)
    ax.set_xlabel(axis.replace("param.", "") + (" (labelled CAPTCHAs)" if axis == "train_count" else ""))
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(-2, 102)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_heatmap(matrix, rows: list[str], columns: list[str], title: str, *, path: Path) -> None:
    plt = pyplot()
    m = 100 * np.asarray([[np.nan if v is None else v for v in row] for row in matrix], float)
    fig, ax = plt.subplots(figsize=(1.3 * len(columns) + 2.5, 1.0 * len(rows) + 1.8), dpi=100)
    im = ax.imshow(m, cmap="RdYlGn", vmin=0, vmax=100)
    for (i, j), v in np.ndenumerate(m):
        ax.text(j, i, "failed" if np.isnan(v) else f"{v:.1f}", ha="center", va="center", fontsize=9)
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


def atomic_plot(path: Path, draw: Callable[[Path], None]) -> Path:
    """Run `draw(temporary_path)` and move the PNG to `path` only when it is complete."""
    tmp = path.with_name(f".{path.name}.tmp.png")
    try:
        with naming(path):  # a plotting library's failed write names no file: name this one
            draw(tmp)
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def plot_adversarial(report: dict, *, path: Path) -> None:
    """Left: every attacker's accuracy against eps on the same CAPTCHAs (the target white-box, the
    others by transfer, the adversarially retrained target dashed). Right: the target's accuracy
    after each defence."""
    plt = pyplot()
    rows = report["rows"]
    eps = [r["eps"] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), dpi=100, sharey=True)
    for name in report["attackers"]:
        kind = "white-box" if name == report["target"] else "transfer"
        left.plot(eps, [100 * r["accuracy"][name] for r in rows], marker="o", label=f"{name} ({kind})")
    if report.get("retrained"):
        curve = report["retrained"]["white_box_accuracy"]
        left.plot(
            eps,
            [100 * curve[f"{e:g}"] for e in eps],
            marker="s",
            linestyle="--",
            label=f"{report['target']} after adversarial training (white-box)",
        )
    right.plot(
        eps, [100 * r["accuracy"][report["target"]] for r in rows], marker="o", color="black", label="no defence"
    )
    for d in report["defences"]:
        right.plot(eps, [100 * r["defended"][report["target"]][d] for r in rows], marker="^", linestyle=":", label=d)
    for ax, title in (
        (left, "attackers on the same perturbed CAPTCHAs"),
        (right, f"{report['target']} behind each defence"),
    ):
        ax.set_xlabel("eps (pixels of 0-255)")
        ax.set_ylim(-2, 102)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        ax.set_title(title, fontsize=9)
    left.set_ylabel("CAPTCHA accuracy (%)")
    fig.suptitle(
        f"{report['method'].upper()}-{report['steps']} against {report['target']} on "
        f"{report['style']} (strength {report['strength']})",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def perturbation_sheet(clean: list[np.ndarray], sheet: list, *, path: Path) -> None:
    """Per eps, the perturbed CAPTCHAs and their perturbations amplified (grey = unchanged)."""
    images, captions = [], []
    for im in clean:
        images.append(im)
        captions.append("clean")
    for eps, adv in sheet:
        if not eps:
            continue
        for a, c in zip(adv, clean):
            images.append(a)
            captions.append(f"eps {eps:g}/255")
        for a, c in zip(adv, clean):
            diff = (a.astype(np.float32) - c.astype(np.float32)) * (127.0 / eps) + 128
            images.append(diff.clip(0, 255).astype(np.uint8))
            captions.append(f"perturbation x{127 / eps:.0f}")
    contact_sheet(images, captions, path=path, columns=len(clean), cell_height=56)
