"""Image grids: the question is `{"grid": 3 or 4, "prompt": "biscuit"}` ("select all images /
squares with biscuits"); the answer is the set of tile indices showing the prompt class, 0-based
row by row from the top left, written sorted and space-separated: "0 4 7" ("" when none does).
labels.csv: `filename,grid,prompt,answer` with grid written "3x3" or "4x4". A dynamic grid's later
reads, with the selected tiles replaced, add `"round": 2, 3, ...` to the question."""

from __future__ import annotations

from collections import Counter
from functools import lru_cache
from types import SimpleNamespace

import cv2

from .base import LOWER_BOUND_NOTE, Kind, interval, pct, plain_reply, trained, unanswered

GRID_SIZES = (3, 4)
MAP_CELLS = 4  # a 4x4 grid's coverage_map (what grid4 records for dense readers): cells to a square's side


class GridKind(Kind):
    name, columns, unit, default_attacker, example_style = (
        "grid",
        ("grid", "prompt", "answer"),
        "tile",
        "tilecnn",
        "grid3",
    )
    unit_definition = (
        "tile accuracy = tiles (squares) whose first selection matches the answer, selected or "
        "left, divided by all tiles"
    )
    widget, view = "tiles", "tiles"
    asks = "Select all squares showing: {prompt}. Then press Verify."
    page_question = ("grid", "prompt")
    per_style_columns = (("captcha_accuracy", "success"), ("char_accuracy", "tile acc."))

    def row(self, question, answer):
        return [f"{question['grid']}x{question['grid']}", question["prompt"], answer]

    def parse_row(self, cells):
        size = parse_grid(cells["grid"])
        prompt = cells["prompt"].strip()
        if not prompt:
            raise ValueError("empty prompt")
        return {"grid": size, "prompt": prompt}, format_tiles(parse_tiles(cells["answer"], size * size))

    def units(self, answer):
        return len(answer.split())

    def kept(self, item):
        # the scorer reads the answers, the class each tile showed and two flags of the reading; each
        # tile's clutter and probabilities stay behind (they made an attack's memory grow by several
        # kB a challenge). One record per class, shared: the scorer only reads them.
        details = getattr(item.reading, "details", None) or {}
        flags = {k: v for k, v in details.items() if k in ("failure", "unknown_prompt")}
        tiles = (getattr(item, "details", None) or {}).get("tiles")
        shown = [_tile_record(t.get("class") if isinstance(t, dict) else None) for t in tiles or ()]
        return SimpleNamespace(
            text=item.text,
            question=item.question,
            rounds=getattr(item, "rounds", 0),
            reading=SimpleNamespace(text=item.reading.text, details=flags),
            details={"tiles": shown} if tiles else None,
        )

    def score(self, items):
        measured = score_grid(items)
        n = len(items)
        unknown = Counter(
            it.question["prompt"] for it in items if (getattr(it.reading, "details", None) or {}).get("unknown_prompt")
        )
        dynamic = (
            {
                "dynamic_count": measured["dynamic"],
                "solved_within_rounds": measured["solved_within_rounds"],
                "first_selection_accuracy": measured["exact"] / n if n else 0.0,
            }
            if measured["dynamic"]
            else {}
        )
        return {
            "success": measured["success"],
            "unit_accuracy": measured["tile_accuracy"],
            "rates": {"lenient_accuracy": measured["lenient"]},
            "fields": {
                **dynamic,
                "lenient_definition": f"at most {measured['lenient_misses']} tile wrong (missed or extra)",
                **{k: measured[k] for k in ("tile_precision", "tile_recall", "tile_counts", "most_confused")},
                "unknown_prompts": dict(unknown),
            },
        }

    def report_table(self, result):
        lines = [
            "",
            "| attacker | success (exact set) | 95% interval | lenient success | tile accuracy | "
            "tile precision | tile recall | challenges/s | read | skipped | training |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for name, r in result["per_attacker"].items():
            lines.append(
                f"| {name} | {pct(r['captcha_accuracy'])} | {interval(r.get('captcha_accuracy_ci95'))} | "
                f"{pct(r.get('lenient_accuracy'))} | {pct(r['char_accuracy'])} | "
                f"{pct(r.get('tile_precision'))} | {pct(r.get('tile_recall'))} | "
                f"{r.get('captchas_per_second') or '-'} | {r['count']} | {r['skipped']} | "
                f"{trained(r.get('state'))} |"
            )
        first = next(iter(result["per_attacker"].values()))
        return lines + [
            "",
            "Success is single-attempt: the selected tiles are exactly the answer's. Lenient success "
            f"accepts {first.get('lenient_definition', 'one wrong tile')}, as deployed 4x4 grids do. Tile "
            "accuracy (`char_accuracy` in report.json) counts every tile of every challenge, selected or not; "
            "precision and recall are over the tiles selected and the tiles of the answers.",
            "",
            LOWER_BOUND_NOTE,
        ]

    def summary(self, r):
        return f", lenient {r['lenient_accuracy']:.2%}, tile accuracy {r['char_accuracy']:.2%}"

    def attacker_lines(self, r):
        lines = []
        if r.get("dynamic_count"):
            within = ", ".join(f"{n} reads: {pct(v)}" for n, v in r["solved_within_rounds"].items()) or "none"
            lines += [
                f"Dynamic grids ({r['dynamic_count']}): solved {pct(r['captcha_accuracy'])}; the first "
                f"selection exact {pct(r['first_selection_accuracy'])}; solved within {within} (each "
                "selected tile is replaced from its queue and the grid read again, until the reader selects "
                "nothing; one wrong tile fails the challenge).",
                "",
            ]
        if r.get("unknown_prompts"):
            lines += [
                "Prompts this reader never learnt (it selected nothing, a failure): "
                + ", ".join(f"{p} ({n})" for p, n in r["unknown_prompts"].items()),
                "",
            ]
        if r.get("most_confused"):
            lines += [
                "Tiles selected wrongly, by the prompt and the class they showed: "
                + ", ".join(f"{c['prompt']}→{c['selected']} ({c['count']})" for c in r["most_confused"]),
                "",
            ]
        return lines + self.per_style_lines(r)

    def seen(self, image, item):
        """Per tile the probability the reader gave the prompt class; a green frame on the tiles of
        the answer, a red cross on the tiles it selected wrongly."""
        if item.reading is None:
            return image
        grid = item.question["grid"]
        out = image.copy()
        h, w = out.shape[:2]
        truth = parse_tiles(item.text, grid * grid)
        try:
            chosen = parse_tiles(item.reading.text, grid * grid)
        except ValueError:
            chosen = frozenset()
        probabilities = (item.reading.details or {}).get("tile_probabilities") or [None] * grid * grid
        for k, p in enumerate(probabilities):
            r, c = divmod(k, grid)
            x0, y0, x1, y1 = c * w // grid, r * h // grid, (c + 1) * w // grid - 1, (r + 1) * h // grid - 1
            if k in truth:
                cv2.rectangle(out, (x0 + 1, y0 + 1), (x1 - 1, y1 - 1), (0, 170, 0), 3)
            if k in chosen - truth:
                cv2.line(out, (x0 + 4, y0 + 4), (x1 - 4, y1 - 4), (0, 0, 230), 3)
                cv2.line(out, (x0 + 4, y1 - 4), (x1 - 4, y0 + 4), (0, 0, 230), 3)
            if p is not None:
                label = f"{p:.2f}"
                cv2.putText(
                    out, label, (x0 + 5, y0 + 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 3, cv2.LINE_AA
                )
                cv2.putText(out, label, (x0 + 5, y0 + 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
        return out

    def caption(self, item):
        return f"{item.question['prompt']}: {item.text or '-'} -> {item.reading.text or '-'}"

    def describe_reading(self, found, truth):
        return (f"selects tiles {found}" if found else "selects nothing") + (
            f" (truth {truth or 'none'})" if truth is not None else ""
        )

    def page_answer(self, answer, question):
        n = question["grid"] ** 2
        if (
            not isinstance(answer, list)
            or len(answer) > n
            or not all(isinstance(i, int) and not isinstance(i, bool) for i in answer)
        ):
            raise ValueError(f"a grid answer is a list of tile numbers 0-{n - 1}")
        return format_tiles(parse_tiles(" ".join(map(str, answer)), n))

    def typed_answer(self, text, question):
        return self.page_answer(sorted(parse_tiles(text, question["grid"] ** 2)), question)

    def solver_prompt(self, question, charset, length):
        n = question["grid"]
        return (
            f"This picture is a {n}x{n} grid of squares, numbered 0 to {n * n - 1} row by row from the "
            f"top left. Reply with the numbers of all squares showing: {question['prompt']}, separated "
            "by spaces, or with the word none if no square does. Reply with nothing else."
        )

    def solver_answer(self, reply, question, charset):
        text = plain_reply(reply)
        return "" if text.lower() == "none" else self.typed_answer(text, question)

    def page_value(self, truth, question):
        return [int(t) for t in truth.split()]

    def wrong_value(self, truth, question, charset, rng):
        n = question["grid"] ** 2
        return sorted({int(t) for t in truth.split()} ^ {int(rng.integers(n))})


def parse_grid(text: str) -> int:
    """ "3x3" -> 3; only the sizes deployed grids use."""
    rows, sep, cols = text.strip().lower().partition("x")
    if not sep or rows != cols or not rows.isdigit() or int(rows) not in GRID_SIZES:
        raise ValueError(f"grid {text!r} is not one of {', '.join(f'{n}x{n}' for n in GRID_SIZES)}")
    return int(rows)


def parse_tiles(text: str, tiles: int) -> frozenset[int]:
    """Tile indices from "0 4 7" (commas allowed too), each in [0, tiles)."""
    parts = text.replace(",", " ").split()
    if not all(p.isdigit() for p in parts):
        raise ValueError(f"answer {text!r} is not tile numbers separated by spaces")
    found = frozenset(int(p) for p in parts)
    if any(i >= tiles for i in found):
        raise ValueError(f"answer {text!r} names a tile outside 0-{tiles - 1}")
    return found


def format_tiles(indices) -> str:
    return " ".join(str(i) for i in sorted(set(indices)))


def _tile_record(cls) -> dict:
    return _class_record(cls if isinstance(cls, str) else None)  # a malformed record showed nothing known


@lru_cache(maxsize=4096)
def _class_record(cls: str | None) -> dict:
    return {"class": cls}


def score_grid(items, lenient_misses: int = 1) -> dict:
    """Grid results on scored items (truth `text`, question, the reading's `text`): success (the
    exact set in one attempt; a dynamic grid solved over its rounds), the first selection's exact
    success, lenient success (at most `lenient_misses` squares wrong, as deployed 4x4 grids
    accept), per-tile accuracy, precision and recall of the first selections, and for dynamic
    grids the share solved within each number of reads (the final empty one included)."""
    counts = {"tp": 0, "fp": 0, "fn": 0, "tn": 0}
    exact = lenient = success = 0
    dynamic = [it for it in items if getattr(it, "rounds", 0) != 0]
    confused: Counter = Counter()
    for it in items:
        n = it.question["grid"] ** 2
        truth = parse_tiles(it.text, n)
        answered = not unanswered(it.reading)
        try:
            guess = parse_tiles(it.reading.text, n) if answered else frozenset()
        except ValueError:
            guess = frozenset()  # an unreadable answer selects nothing
        exact += answered and guess == truth
        lenient += answered and len(guess ^ truth) <= lenient_misses
        # a dynamic grid is solved over its rounds (attack.play_rounds), a static one in one go
        success += (it.rounds is not None) if getattr(it, "rounds", 0) != 0 else answered and guess == truth
        shown = (getattr(it, "details", None) or {}).get("tiles")
        if shown and len(shown) == n:  # which class a wrongly selected tile showed (look-alike decoys)
            for k in guess - truth:
                confused[(it.question["prompt"], shown[k].get("class") or "nothing")] += 1
        counts["tp"] += len(guess & truth)
        counts["fp"] += len(guess - truth)
        counts["fn"] += len(truth - guess)
        counts["tn"] += n - len(guess | truth)
    tiles = sum(counts.values())
    selected, positive = counts["tp"] + counts["fp"], counts["tp"] + counts["fn"]
    rounds = [it.rounds for it in dynamic if it.rounds is not None]
    within = {str(r): sum(x <= r for x in rounds) / len(dynamic) for r in range(2, max(rounds, default=1) + 1)}
    return {
        "exact": exact,
        "success": success,
        "lenient": lenient,
        "lenient_misses": lenient_misses,
        "tile_counts": counts,
        "dynamic": len(dynamic),
        "solved_within_rounds": within,
        "most_confused": [{"prompt": p, "selected": c, "count": k} for (p, c), k in confused.most_common(10)],
        "tile_accuracy": (counts["tp"] + counts["tn"]) / tiles if tiles else 0.0,
        "tile_precision": counts["tp"] / selected if selected else None,
        "tile_recall": counts["tp"] / positive if positive else None,
    }
