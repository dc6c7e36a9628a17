"""The security-usability frontier: per design, how well people solve it beside how well its best
attacker does, and which designs no other design beats on both.

Human results per design come from a study folder's answers (main items only; participants who
failed an attention check left out): success with a Wilson 95% interval (it stays honest at small
counts and at 0% or 100%; it treats answers as independent, so with several people per item it is
somewhat narrow), the median solve time with its distribution-free 95% interval (order statistics
of the binomial), and agreement (Bursztein et al. 2010: the share of items whose answers, from
two or more people, all agree under the kind's own rule).

Attacker results come from study folders (`captchalab run`), attack reports (`captchalab attack`
on a dataset of the design, or on a style) and adversarial reports (one design per eps). A
design's attacker success is its best attacker's; when any of its attackers had not converged the
design is marked, since a patient attacker could move it off the front (unless its best attacker
already passes every challenge: nobody can do better than that).

Alternatives: a site that accepts either of two designs (a visual CAPTCHA and the audio one it
offers people who cannot see it) is only as strong as the weaker: an attacker takes whichever
path it breaks more often, so the site's attacker success is the higher of the two best ones,
while each design's people are those who use it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from statistics import median

from ..errors import CaptchalabError
from ..fileio import atomic_dir
from ..kinds import get_kind
from ..manifest import make_manifest
from ..plots import atomic_plot, pyplot
from ..report import Report, Section, write_report
from ..score import wilson
from .designs import design, design_key, design_label, design_of_manifest, varying_parameters
from .records import excluded_participants, load_answers

MIN_ANSWERS = 30


def median_interval(values: list[float], z: float = 1.96) -> list[float] | None:
    """A distribution-free 95% interval for the median: the order statistics whose ranks the
    binomial(n, 1/2) puts around n/2 (normal approximation to the ranks)."""
    n = len(values)
    if n < 6:
        return None
    ordered = sorted(values)
    half = z * math.sqrt(n) / 2
    low, high = max(0, math.floor(n / 2 - half)), min(n - 1, math.ceil(n / 2 + half) - 1)
    return [ordered[low], ordered[high]]


def human_results(folders: list[Path], min_answers: int = MIN_ANSWERS) -> tuple[dict[str, dict], dict]:
    """Per design key: the human numbers; and what was left out (attention failures, skipped lines)."""
    answers, skipped = [], {}
    for folder in folders:
        found, left = load_answers(Path(folder))
        answers += found
        for k, v in left.items():
            skipped[k] = skipped.get(k, 0) + v
    excluded = excluded_participants(answers)
    main = [a for a in answers if a["phase"] == "main" and a["participant"] not in excluded]
    by_design: dict[str, list[dict]] = {}
    for a in main:
        by_design.setdefault(design_key(a["design"]), []).append(a)
    results = {}
    for key, group in by_design.items():
        n, right = len(group), sum(a["correct"] for a in group)
        seconds = [a["ms"] / 1000 for a in group if a["ms"] is not None]
        kind = get_kind(group[0]["kind"])
        per_item: dict[tuple, list[str]] = {}
        for a in group:
            per_item.setdefault((a["dataset"], a["item"]), []).append(a["answer"])
        shared = [v for v in per_item.values() if len(v) >= 2]
        agreed = sum(all(kind.correct(x, y) for x in v for y in v) for v in shared)
        results[key] = {
            "design": group[0]["design"],
            "human_answers": n,
            "human_participants": len({a["participant"] for a in group}),
            "human_items": len(per_item),
            "human_success": right / n,
            "human_success_ci95": wilson(right, n),
            "human_median_seconds": median(seconds) if seconds else None,
            "human_median_seconds_ci95": median_interval(seconds),
            "human_agreement": agreed / len(shared) if shared else None,
            "human_agreement_items": len(shared),
            "simulated": any(a["source"] == "simulated" for a in group),
            "too_few_answers": n < min_answers,
        }
    return results, {
        "attention_failed_participants": len(excluded),
        **skipped,
        "answers_used": len(main),
        "answers_total": len(answers),
    }


def _attacker_entry(label: str, result: dict) -> dict:
    state = result.get("state") or {}
    return {
        "attacker": label,
        "success": result.get("captcha_accuracy"),
        "ci95": result.get("captcha_accuracy_ci95"),
        "count": result.get("count"),
        "converged": state.get("converged"),
        "lower_bound": bool(state.get("lower_bound")),
    }


def attacker_results(folders: list[Path]) -> dict[str, list[dict]]:
    """Per design key: every attacker's result on it, from study, attack and adversarial report folders."""
    found: dict[str, list[dict]] = {}
    for folder in folders:
        path = Path(folder) / "report.json"
        try:
            report = json.loads(path.read_text())
        except (OSError, ValueError):
            raise CaptchalabError(
                f"{folder} holds no readable report.json (give a study, attack or adversarial report folder)"
            ) from None
        if not isinstance(report, dict):
            raise CaptchalabError(f"{path} is not a captchalab report")
        for key, entries in attackers_in_report(report, path).items():
            found.setdefault(key, []).extend(entries)
    return found


def attackers_in_report(report: dict, path: Path | str = "the report") -> dict[str, list[dict]]:
    """Per design key: the attacker results one report holds."""
    found: dict[str, list[dict]] = {}

    def add(d: dict, label: str, result: dict) -> None:
        if isinstance(result, dict) and isinstance(result.get("captcha_accuracy"), (int, float)):
            found.setdefault(design_key(d), []).append(_attacker_entry(label, result))

    if report.get("kind") == "study":
        for cell in report.get("cells") or []:
            test = cell.get("test") or {}
            if cell.get("status") != "done" or "style" not in test:
                continue
            d = design(test["style"], test.get("parameters"), test.get("strength", 0.0))
            for label, result in (cell.get("per_attacker") or {}).items():
                add(d, label, result)
    elif report.get("kind") == "adversarial":
        n, states = int(report.get("count") or 0), report.get("states") or {}
        for row in report.get("rows") or []:
            d = design(report["style"], report.get("parameters"), report["strength"], row.get("eps", 0.0))
            for label, share in (row.get("accuracy") or {}).items():
                add(
                    d,
                    label,
                    {
                        "captcha_accuracy": share,
                        "captcha_accuracy_ci95": wilson(round(share * n), n),
                        "count": n,
                        "state": states.get(label),
                    },
                )
    elif isinstance(report.get("per_attacker"), dict):
        sources = report.get("sources") or {"": report.get("source") or {}}
        for name, source in sources.items():
            d = _source_design(source)
            if d is None:
                continue
            for label, result in report["per_attacker"].items():
                add(d, label, (result.get("per_style") or {}).get(name, result) if len(sources) > 1 else result)
    else:
        raise CaptchalabError(f"{path} is not a study, attack or adversarial report")
    return found


def _source_design(source: dict) -> dict | None:
    if "dataset" in source:
        return design_of_manifest(source.get("dataset_manifest")) or design(
            f"dataset:{Path(source['dataset']).resolve().name}", {}, 0.0
        )
    if "generator" in source:
        return design(source["generator"], source.get("parameters"), source.get("strength", 0.0))
    return None


def frontier_rows(humans: dict[str, dict], attackers: dict[str, list[dict]]) -> list[dict]:
    """One row per design with human answers or attacker results, the Pareto front marked: a design
    is on it when no other design (with enough human answers) has people succeed at least as often
    and its best attacker at most as often, one of them strictly."""
    rows = []
    for key in list(dict.fromkeys([*humans, *attackers])):
        h = humans.get(key) or {}
        tried = attackers.get(key) or []
        best = max(tried, key=lambda a: a["success"]) if tried else None
        rows.append(
            {
                "design": (h.get("design") or _design_from_key(key)),
                "key": key,
                **{k: v for k, v in h.items() if k != "design"},
                "best_attacker": best["attacker"] if best else None,
                "attacker_success": best["success"] if best else None,
                "attacker_success_ci95": best["ci95"] if best else None,
                "attacker_count": best["count"] if best else None,
                "attackers": tried,
                "attacker_lower_bound": bool(best) and best["success"] < 1 and any(a["lower_bound"] for a in tried),
            }
        )
    shown = varying_parameters([r["design"] for r in rows])
    eligible = [
        r for r in rows if r.get("human_answers") and not r.get("too_few_answers") and r["attacker_success"] is not None
    ]
    for r in rows:
        r["label"] = design_label(r["design"], shown)
        r["on_front"] = r in eligible and not any(
            o is not r
            and o["human_success"] >= r["human_success"]
            and o["attacker_success"] <= r["attacker_success"]
            and (o["human_success"] > r["human_success"] or o["attacker_success"] < r["attacker_success"])
            for o in eligible
        )
        r["status"] = (
            "no human answers"
            if not r.get("human_answers")
            else "too few human answers"
            if r.get("too_few_answers")
            else "no attacker result"
            if r["attacker_success"] is None
            else "measured"
        )
    return rows


def parse_alternative(text: str) -> tuple[str, str]:
    """`DESIGN=DESIGN`, each `STYLE` or `STYLE@STRENGTH`, into the two design names."""
    names = [n.strip() for n in str(text).split("=")]
    if len(names) != 2 or not all(names):
        raise CaptchalabError(f"`alternatives` {text!r}: write DESIGN=DESIGN, each STYLE or STYLE@STRENGTH")
    return names[0], names[1]


def _design_row(rows: list[dict], name: str) -> dict:
    style, _, strength = name.partition("@")
    try:
        wanted = None if not strength else round(float(strength), 6)
    except ValueError:
        raise CaptchalabError(f"`alternatives`: {name!r} is not STYLE or STYLE@STRENGTH") from None
    found = [r for r in rows if r["design"]["style"] == style and wanted in (None, r["design"]["strength"])]
    if len(found) != 1:
        have = ", ".join(f"{r['design']['style']}@{r['design']['strength']:g}" for r in rows)
        what = "no design" if not found else f"{len(found)} designs (add @STRENGTH)"
        raise CaptchalabError(f"`alternatives`: {what} {name!r} among the results; they hold {have}")
    return found[0]


def alternative_rows(rows: list[dict], pairs: list[tuple[str, str]]) -> list[dict]:
    """Per pair of designs one site offers side by side: the site's attacker success, the higher of
    the two designs' best attackers' (the path an attacker takes), and each design's people."""
    found = []
    for pair in pairs:
        both = [_design_row(rows, name) for name in pair]
        measured = [r for r in both if r["attacker_success"] is not None]
        weakest = max(measured, key=lambda r: r["attacker_success"]) if len(measured) == 2 else None
        found.append(
            {
                "designs": [r["label"] for r in both],
                "keys": [r["key"] for r in both],
                "weakest": weakest["label"] if weakest else None,
                "attacker_success": weakest["attacker_success"] if weakest else None,
                "attacker_success_ci95": weakest["attacker_success_ci95"] if weakest else None,
                "best_attacker": weakest["best_attacker"] if weakest else None,
                "attacker_lower_bound": bool(weakest)
                and weakest["attacker_success"] < 1
                and any(r["attacker_lower_bound"] for r in both),
                "human_success": [r.get("human_success") for r in both],
                "human_median_seconds": [r.get("human_median_seconds") for r in both],
            }
        )
    return found


def _design_from_key(key: str) -> dict:
    style, parameters, strength, eps = json.loads(key)
    return design(style, parameters, strength, eps)


def plot_frontier(
    rows: list[dict], *, path: Path, title: str = "Security and usability per design", alternatives=()
) -> None:
    """Human success against the best attacker's (left) and human median time against it (right):
    filled points measured, hollow ones from an attacker that had not converged, grey crosses with
    too few human answers; the front joined by a line; designs offered side by side joined by a
    dashed line, the site's attacker success (the weaker design's) marked on it. SIMULATED across
    the image when any answer came from simulated participants."""
    plt = pyplot()
    drawn = [r for r in rows if r.get("human_answers") and r["attacker_success"] is not None]
    by_key = {r["key"]: r for r in drawn}
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.8), sharey=True)
    for ax, x_of, ci_of, xlabel in (
        (axes[0], "human_success", "human_success_ci95", "human success"),
        (axes[1], "human_median_seconds", "human_median_seconds_ci95", "human median solve time (s)"),
    ):
        for i, r in enumerate(drawn):
            x = r.get(x_of)
            if x is None:
                continue
            y, ci, yci = r["attacker_success"], r.get(ci_of), r.get("attacker_success_ci95")
            few = r.get("too_few_answers")
            colour = "0.6" if few else ("tab:green" if r["on_front"] else "tab:blue")
            xerr = [[x - ci[0]], [ci[1] - x]] if ci else None
            yerr = [[y - yci[0]], [yci[1] - y]] if yci else None
            ax.errorbar(x, y, xerr=xerr, yerr=yerr, fmt="none", ecolor=colour, alpha=0.5, lw=1)
            ax.scatter(
                [x],
                [y],
                s=60,
                marker="x" if few else "o",
                color=colour,
                facecolors="none" if r["attacker_lower_bound"] and not few else colour,
                zorder=3,
            )
            ax.annotate(r["label"], (x, y), textcoords="offset points", xytext=(5, 5 + 9 * (i % 3)), fontsize=7)
        for alt in alternatives:
            pair = [by_key.get(k) for k in alt["keys"]]
            if None in pair or any(r.get(x_of) is None for r in pair) or alt["attacker_success"] is None:
                continue
            xs = [r[x_of] for r in pair]
            ax.plot(xs, [r["attacker_success"] for r in pair], color="tab:red", ls="--", lw=1, zorder=2)
            ax.hlines(alt["attacker_success"], min(xs), max(xs), color="tab:red", lw=2, alpha=0.6, zorder=2)
            ax.annotate(
                "the site with both: " + f"{alt['attacker_success']:.0%}",
                (sum(xs) / 2, alt["attacker_success"]),
                textcoords="offset points",
                xytext=(0, -12),
                ha="center",
                fontsize=7,
                color="tab:red",
            )
        front = sorted((r for r in drawn if r["on_front"] and r.get(x_of) is not None), key=lambda r: r[x_of])
        if x_of == "human_success" and len(front) > 1:
            ax.plot([r[x_of] for r in front], [r["attacker_success"] for r in front], color="tab:green", lw=1, zorder=2)
        ax.set_xlabel(xlabel + " (95% interval)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("best attacker's success (95% interval)")
    axes[0].set_xlim(-0.02, 1.02)
    axes[0].set_ylim(-0.02, 1.1)  # room for the labels of designs read at 100%
    fig.suptitle(
        title + "\ngreen: on the front; hollow: an attacker had not converged (a lower bound); "
        "grey x: too few human answers"
        + ("; red dashes: designs one site offers side by side" if alternatives else ""),
        fontsize=9,
    )
    if any(r.get("simulated") for r in drawn):
        fig.text(
            0.5,
            0.5,
            "SIMULATED",
            fontsize=80,
            color="red",
            alpha=0.25,
            ha="center",
            va="center",
            rotation=25,
            weight="bold",
            zorder=10,
        )
        fig.text(
            0.5, 0.01, "human answers from simulated participants, not people", ha="center", fontsize=9, color="red"
        )
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def frontier_sections(
    rows: list[dict],
    left_out: dict,
    out: Path,
    min_answers: int = MIN_ANSWERS,
    name: str = "frontier.png",
    alternatives: list[dict] = (),
):
    """The report sections of a frontier: the table, what was left out, the designs offered side by
    side, the plot."""

    def pct(v):
        return "-" if v is None else f"{v:.1%}"

    def interval(ci, fmt="{:.0%}"):
        return "" if not ci else " (" + fmt.format(ci[0]) + "-" + fmt.format(ci[1]) + ")"

    lines = [
        "| design | people: success | answers (people) | median time, s | agreement | best attacker | "
        "its success | front | status |",
        "|---" * 9 + "|",
    ]
    for r in rows:
        seconds = r.get("human_median_seconds")
        trained = " (**not converged**)" if r["attacker_lower_bound"] else ""
        lines.append(
            f"| {r['label']} | {pct(r.get('human_success'))}{interval(r.get('human_success_ci95'))} | "
            f"{r.get('human_answers', 0)} ({r.get('human_participants', 0)}) | "
            f"{'-' if seconds is None else f'{seconds:.1f}'}{interval(r.get('human_median_seconds_ci95'), '{:.1f}')} | "
            f"{pct(r.get('human_agreement'))} | {r['best_attacker'] or '-'}{trained} | "
            f"{pct(r['attacker_success'])}{interval(r.get('attacker_success_ci95'))} | "
            f"{'yes' if r['on_front'] else ''} | {r['status']}{' (simulated)' if r.get('simulated') else ''} |"
        )
    lines += [
        "",
        "People: success with a Wilson 95% interval over answers (answers treated as independent), the "
        "median solve time (image shown to answer) with a distribution-free 95% interval, agreement = share "
        "of items answered by two or more people whose answers all agree (Bursztein et al. 2010). "
        f"Designs with fewer than {min_answers} human answers are shown but kept off the front. The best "
        "attacker is the most successful one measured on the design; a design any of whose attackers had "
        "not converged is marked, since a patient attacker could take it off the front (not when its best "
        "attacker already passes every challenge).",
        "",
        "Left out: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in left_out.items()),
    ]
    if alternatives:
        lines += [
            "",
            "Designs one site offers side by side (a CAPTCHA and its alternative): the site is as strong as "
            "the weaker, since an attacker takes the path it breaks more often; each design's people are those "
            "who use it.",
            "",
            "| designs | people: success | median time, s | the site's attacker success | through |",
            "|---|---|---|---|---|",
        ]
        for a in alternatives:
            people = " / ".join(pct(v) for v in a["human_success"])
            seconds = " / ".join("-" if v is None else f"{v:.1f}" for v in a["human_median_seconds"])
            trained = " (**not converged**)" if a["attacker_lower_bound"] else ""
            lines.append(
                f"| {' or '.join(a['designs'])} | {people} | {seconds} | "
                f"{pct(a['attacker_success'])}{interval(a['attacker_success_ci95'])}{trained} | "
                f"{a['weakest'] or '-'} ({a['best_attacker'] or '-'}) |"
            )
    if any(r.get("simulated") for r in rows):
        lines += ["", "**SIMULATED**: some human answers come from simulated participants, not people."]
    plot = atomic_plot(out / name, lambda p: plot_frontier(rows, path=p, alternatives=alternatives))
    return [
        Section(
            "Security and usability: people beside the best attacker",
            lines,
            [("People's success and time against the best attacker's success, per design", plot)],
        )
    ]


def write_frontier(
    humans: list[Path],
    results: list[Path],
    out: Path,
    min_answers: int = MIN_ANSWERS,
    alternatives: list[tuple[str, str]] = (),
) -> dict:
    """`captchalab frontier`: the frontier report into `out` (report.json/md/html, frontier.csv, the
    plot). `alternatives`: pairs of designs (`STYLE` or `STYLE@STRENGTH`) one site offers side by side."""
    human, left_out = human_results(humans, min_answers)
    if not human:
        raise CaptchalabError("no usable human answer in " + ", ".join(map(str, humans)))
    rows = frontier_rows(human, attacker_results(results))
    offered = alternative_rows(rows, list(alternatives))
    data = {
        "kind": "frontier",
        "rows": rows,
        "alternatives": offered,
        "left_out": left_out,
        "min_answers": min_answers,
        "manifest": make_manifest(
            "report", command="frontier", humans=[str(h) for h in humans], results=[str(r) for r in results]
        ),
    }
    with atomic_dir(out, force=True, ours="report.json") as tmp:
        sections = frontier_sections(rows, left_out, tmp, min_answers, alternatives=offered)
        table = [
            {k: (json.dumps(v) if isinstance(v, (dict, list)) else v) for k, v in r.items() if k != "key"} for r in rows
        ]
        write_report(tmp, Report("Security-usability frontier", data, sections, tables={"frontier": table}))
    return data
