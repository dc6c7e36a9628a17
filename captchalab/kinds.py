"""CAPTCHA kinds: what a challenge asks, how its answer is written, and how answers are scored.

Every CAPTCHA has an image, a *question* (what the page shows beside the image) and an *answer*
(what the user must send back). The kind decides both shapes; the house (datasets, sources,
attackers, reports, sweeps, studies) carries them unchanged:

- `text`: no question (a reader may be told the expected length); the answer is the characters.
  labels.csv: `filename,text`.
- `grid`: the question is `{"grid": 3 or 4, "prompt": "biscuit"}` ("select all images / squares
  with biscuits"); the answer is the set of tile indices showing the prompt class, 0-based row
  by row from the top left, written sorted and space-separated: "0 4 7" ("" when none does).
  labels.csv: `filename,grid,prompt,answer` with grid written "3x3" or "4x4". A dynamic grid's
  later reads, with the selected tiles replaced, add `"round": 2, 3, ...` to the question.
- `slider`: the question is `{"y": the piece's top}` and the piece itself (an RGBA image,
  NAME.piece.png, handed to the attacker as `question["piece"]`); the answer is the x of the
  gap's left edge in background pixels ("137"). labels.csv: `filename,y,x`.
- `rotation`: no question; the answer is the clockwise turn in whole degrees, [0, 360), that
  makes the round picture upright ("270"). labels.csv: `filename,angle`.

An answer always travels as its label string (a `Reading`'s `text`, a training example's label),
so every path of the house carries it unchanged; whether it passes is the kind's rule (`correct`:
the exact string for text and grids, a tolerance for sliders and rotations), and the kind's
scorer adds its own measures. What `prepare` is told: the expected length for text (when the
attacker uses it), else the question with the images the page shows beside it (attack.hint_for).
"""
from __future__ import annotations

from collections import Counter
from typing import Any, ClassVar

from .errors import CaptchalabError

GRID_SIZES = (3, 4)
MAP_CELLS = 4  # a 4x4 grid's coverage_map (what grid4 records for dense readers): cells to a square's side


class Kind:
    name: ClassVar[str] = ""
    columns: ClassVar[tuple[str, ...]] = ()      # labels.csv header, after filename
    unit: ClassVar[str] = ""                      # what char_accuracy counts
    unit_definition: ClassVar[str] = ""           # how (report.json's char_accuracy_definition)
    default_attacker: ClassVar[str] = ""          # what `train captcha` trains when no --attacker is named
    question_parts: ClassVar[tuple[tuple[str, bool], ...]] = ()  # images shown with the question (name, alpha)
    example_style: ClassVar[str] = ""             # a built-in style of this kind (explore draws from it)

    def row(self, question: Any, answer: str) -> list[str]:
        """The labels.csv cells after the filename."""
        raise NotImplementedError

    def parse_row(self, cells: dict[str, str]) -> tuple[Any, str]:
        """(question, answer) from a labels.csv row's cells by column name; ValueError says why not."""
        raise NotImplementedError

    def units(self, answer: str) -> int:
        """How many units (characters, selected tiles) an answer holds: a Reading's confidence
        has one probability per unit."""
        raise NotImplementedError

    def correct(self, truth: str, guess: str) -> bool:
        """Whether an answer passes (training judges its validation CAPTCHAs by this)."""
        return guess == truth

    def score(self, items) -> dict:
        """Scored items (truth `text`, `question`, the reading) -> {"success": count, "unit_accuracy":
        share, "rates": {name: successes} (each reported as a share with its 95% interval),
        "fields": the kind's other measures for report.json} (text is scored by score.score)."""
        raise NotImplementedError


class TextKind(Kind):
    name, columns, unit, default_attacker, example_style = "text", ("text",), "character", "segment", "distorted"
    unit_definition = ("character accuracy = sum over CAPTCHAs of max(0, length - edit distance between guess "
                       "and truth), divided by the number of true characters")

    def row(self, question, answer):
        return [answer]

    def parse_row(self, cells):
        return None, cells["text"]

    def units(self, answer):
        return len(answer)


class GridKind(Kind):
    name, columns, unit, default_attacker, example_style = "grid", ("grid", "prompt", "answer"), "tile", "tilecnn", "grid3"
    unit_definition = ("tile accuracy = tiles (squares) whose first selection matches the answer, selected or "
                       "left, divided by all tiles")

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

    def score(self, items):
        measured = score_grid(items)
        n = len(items)
        unknown = Counter(it.question["prompt"] for it in items
                          if (getattr(it.reading, "details", None) or {}).get("unknown_prompt"))
        dynamic = {"dynamic_count": measured["dynamic"], "solved_within_rounds": measured["solved_within_rounds"],
                   "first_selection_accuracy": measured["exact"] / n if n else 0.0} if measured["dynamic"] else {}
        return {"success": measured["success"], "unit_accuracy": measured["tile_accuracy"],
                "rates": {"lenient_accuracy": measured["lenient"]}, "fields": {
            **dynamic, "lenient_definition": f"at most {measured['lenient_misses']} tile wrong (missed or extra)",
            **{k: measured[k] for k in ("tile_precision", "tile_recall", "tile_counts", "most_confused")},
            "unknown_prompts": dict(unknown)}}


class SliderKind(Kind):
    """"Drag the piece into the gap": the page serves the background (the image) and the piece (an
    RGBA part, `NAME.piece.png`) at height `y`; the answer is the x of the gap's left edge, in
    background pixels. Success: within `tolerance` pixels."""
    name, columns, unit, default_attacker, example_style = "slider", ("y", "x"), "challenge", "locator", "slider"
    unit_definition = "the share of challenges answered within the tolerance (the success rate)"
    question_parts = (("piece", True),)  # shown to the solver with the question (with its transparency)
    tolerance = 5

    def row(self, question, answer):
        return [str(question["y"]), answer]

    def parse_row(self, cells):
        y, x = cells["y"].strip(), cells["x"].strip()
        if not y.isdigit() or not x.isdigit():
            raise ValueError(f"y {y!r} and x {x!r} must be whole numbers of pixels")
        return {"y": int(y)}, str(int(x))

    def units(self, answer):
        return 1

    def correct(self, truth, guess):
        guess = guess.strip()
        return guess.lstrip("-").isdigit() and abs(int(guess) - int(truth)) <= self.tolerance

    def score(self, items):
        errors = []
        for it in items:
            guess = it.reading.text.strip()
            errors.append(abs(int(guess) - int(it.text)) if guess.lstrip("-").isdigit() else None)
        return score_errors(errors, self.tolerance, (1, 2, 5, 10, 20), "px")


def score_errors(errors: list, tolerance: float, shown: tuple, unit: str) -> dict:
    """A kind answered by one number (pixels, degrees) from each answer's error (None: no usable
    answer): success within `tolerance`, the share within each of `shown`, mean and median."""
    known = [e for e in errors if e is not None]
    n = len(errors)
    success = sum(e is not None and e <= tolerance for e in errors)
    within = {str(t): (sum(e is not None and e <= t for e in errors) / n if n else 0.0) for t in shown}
    return {"success": success, "unit_accuracy": success / n if n else 0.0, "fields": {
        f"tolerance_{unit}": tolerance, f"within_{unit}": within, "no_answer": errors.count(None),
        f"mean_abs_error_{unit}": float(sum(known) / len(known)) if known else None,
        f"median_abs_error_{unit}": float(sorted(known)[len(known) // 2]) if known else None}}


def angle_error(truth: float, guess: float, symmetry: int = 1) -> float:
    """The smallest turn, in degrees, between two angles, counting the `symmetry` equivalent
    answers of content that looks the same every 360/symmetry degrees."""
    period = 360.0 / max(1, symmetry)
    difference = (guess - truth) % period
    return min(difference, period - difference)


class RotationKind(Kind):
    """"Turn the picture upright": the image is a round picture turned by an unknown angle; the
    answer is the clockwise turn, in whole degrees in [0, 360), that makes it upright. A picture
    that looks the same every 360/k degrees (its `symmetry` k, in challenges.json) is scored
    against all k equivalent answers. Success: within `tolerance` degrees."""
    name, columns, unit, default_attacker, example_style = "rotation", ("angle",), "challenge", "rotnet", "rotation"
    unit_definition = SliderKind.unit_definition
    tolerance = 10

    def row(self, question, answer):
        return [answer]

    def parse_row(self, cells):
        angle = cells["angle"].strip()
        if not angle.isdigit() or not 0 <= int(angle) < 360:
            raise ValueError(f"angle {angle!r} is not whole degrees in [0, 360)")
        return {}, str(int(angle))

    def units(self, answer):
        return 1

    def correct(self, truth, guess):
        guess = guess.strip()
        return guess.isdigit() and angle_error(int(truth), int(guess)) <= self.tolerance

    def score(self, items):
        errors = []
        for it in items:
            guess = it.reading.text.strip()
            symmetry = int((getattr(it, "details", None) or {}).get("symmetry", 1))
            errors.append(angle_error(int(it.text), int(guess), symmetry) if guess.isdigit() else None)
        return score_errors(errors, self.tolerance, (5, 10, 20, 45, 90), "degrees")


KINDS: dict[str, Kind] = {k.name: k for k in (TextKind(), GridKind(), SliderKind(), RotationKind())}


def get_kind(name: str) -> Kind:
    if name not in KINDS:
        raise CaptchalabError(f"unknown CAPTCHA kind {name!r} (known: {', '.join(KINDS)})")
    return KINDS[name]


def kind_of_columns(columns: list[str]) -> Kind | None:
    """The kind whose labels.csv columns a header names (text first: its files are the oldest)."""
    return next((k for k in KINDS.values() if all(c in columns for c in k.columns)), None)


# -- grid answers ------------------------------------------------------------------------------

def parse_grid(text: str) -> int:
    """"3x3" -> 3; only the sizes deployed grids use."""
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
        try:
            guess = parse_tiles(it.reading.text, n)
        except ValueError:
            guess = frozenset()  # an unreadable answer selects nothing
        exact += guess == truth
        lenient += len(guess ^ truth) <= lenient_misses
        # a dynamic grid is solved over its rounds (attack.play_rounds), a static one in one go
        success += (it.rounds is not None) if getattr(it, "rounds", 0) != 0 else guess == truth
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
    return {"exact": exact, "success": success, "lenient": lenient, "lenient_misses": lenient_misses,
            "tile_counts": counts, "dynamic": len(dynamic), "solved_within_rounds": within,
            "most_confused": [{"prompt": p, "selected": c, "count": k} for (p, c), k in confused.most_common(10)],
            "tile_accuracy": (counts["tp"] + counts["tn"]) / tiles if tiles else 0.0,
            "tile_precision": counts["tp"] / selected if selected else None,
            "tile_recall": counts["tp"] / positive if positive else None}
