"""Score an attack: per CAPTCHA, per character, per position, and against the generator's boxes.

Character accuracy is defined from the edit distance, so it means the same for an attacker that
cuts characters (and always outputs the expected count) and one that reads the whole image (and
may output more or fewer): a CAPTCHA contributes max(0, len(truth) - distance(guess, truth))
correct characters out of len(truth).
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from .charset import fold
from .kinds import get_kind


def wilson(successes: int, n: int, z: float = 1.96) -> list[float] | None:
    """The Wilson score interval of a success rate (95% by default): unlike the normal
    approximation it stays inside [0, 1] and is honest at 0%, 100% and small counts."""
    if n <= 0:
        return None
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * ((p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5) / (1 + z * z / n)
    return [round(max(0.0, centre - half), 6), round(min(1.0, centre + half), 6)]


def attacker_state(attacker) -> dict:
    """Whether an attacker's numbers are a lower bound: a trained attacker that had not converged
    (or whose model predates the verdict) is one; an off-the-shelf reader is what it is."""
    if not attacker.trainable:
        return {"converged": None, "lower_bound": False, "reasons": ["off the shelf: not trained on this design"]}
    if attacker.info.get("task") in ("mnist", "chars"):
        return {
            "converged": None,
            "lower_bound": True,
            "reasons": ["trained on single characters only, never on CAPTCHAs of this design"],
        }
    verdict = attacker.info.get("convergence") or {}
    converged = verdict.get("converged")
    reasons = verdict.get("reasons") or (
        [] if converged else ["its model records no convergence verdict (trained before captchalab checked)"]
    )
    return {"converged": converged, "lower_bound": converged is not True, "reasons": reasons}


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions each cost 1)."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def box_hit(found, truth) -> bool:
    """A found box covers a true character when it overlaps more than half its width."""
    return min(found[2], truth[2]) - max(found[0], truth[0]) > 0.5 * (truth[2] - truth[0])


class Tally:
    """A score built chunk by chunk as an attack reads (`add`, then `result`), so an attack of a
    million CAPTCHAs keeps no reading once it is counted. `charset` orders the confusion matrix
    (truth rows, guess columns; characters outside it are left out). Every kind gives
    `captcha_accuracy` (single-attempt success) and `char_accuracy` (per unit: character or tile);
    a kind other than text adds its own measures (kinds.py). Text kinds are counted as they come;
    any other kind's scorer (`Kind.score(items)`) takes all its readings at once, so what the kind
    needs of each (`Kind.kept`) is kept until `result`."""

    def __init__(self, charset: str, ignore_case: bool = False, kind: str = "text"):
        self.kind, self.ignore_case = get_kind(kind), ignore_case
        self.kind_name = kind
        labels = "".join(dict.fromkeys(fold(charset, ignore_case)))
        self.labels, self.index = labels, {c: i for i, c in enumerate(labels)}
        self.confusion = np.zeros((len(labels), len(labels)), np.int64)
        self.pos_right: list[int] = []
        self.pos_total: list[int] = []
        self.counts: Counter = Counter()  # done, captchas_right, chars_right, chars_total, boxes...
        self.kind_counts: Counter = Counter()  # the kind's own (TextKind.text_counts)
        self.confused: Counter = Counter()
        self.skipped: list[tuple[str, str | None]] = []  # (name, why)
        self.kept: list = []  # a kind without characters: its read items, for its scorer

    def add(self, items) -> "Tally":
        done = []
        for it in items:
            if it.skipped:
                self.skipped.append((it.name, it.error))
            else:
                done.append(it)
        if not self.kind.characters:
            self.kept += map(self.kind.kept, done)
            return self
        self.counts["done"] += len(done)
        self.kind_counts.update(self.kind.text_counts(done))
        for it in done:
            self._count(it)
        return self

    def _count(self, it) -> None:
        c = self.counts
        truth, guess = fold(it.text, self.ignore_case), fold(it.reading.text, self.ignore_case)
        c["captchas_right"] += self.kind.correct(truth, guess)
        if not self.kind.spelled(truth):  # a value alone: no characters to compare
            return
        c["chars_right"] += max(0, len(truth) - edit_distance(guess, truth))
        c["chars_total"] += len(truth)
        same_length = len(guess) == len(truth)
        while len(self.pos_total) < len(truth):
            self.pos_right.append(0)
            self.pos_total.append(0)
        for pos, t in enumerate(truth):
            right = same_length and guess[pos] == t
            self.pos_right[pos] += right
            self.pos_total[pos] += 1
            if same_length:
                if t in self.index and guess[pos] in self.index:
                    self.confusion[self.index[t], self.index[guess[pos]]] += 1
                if not right:
                    self.confused[(t, guess[pos])] += 1
        boxes = it.reading.boxes
        if boxes is not None:
            c["with_boxes"] += 1
            c["count_right"] += len(boxes) == len(truth)
            if it.true_boxes is not None:
                c["boxes_scored"] += 1
                c["boxes_right"] += len(boxes) == len(truth) and all(
                    box_hit(f, t) for f, t in zip(boxes, it.true_boxes)
                )

    @property
    def read(self) -> int:
        """How many challenges were read (not skipped) so far."""
        return len(self.kept) if not self.kind.characters else self.counts["done"]

    @property
    def read_or_skipped(self) -> int:
        """How many challenges were counted so far, skipped ones included (an attack's speed)."""
        return self.read + len(self.skipped)

    def skipped_fields(self) -> dict:
        return {
            "count": self.read,
            "skipped": len(self.skipped),
            "skipped_files": [name for name, _ in self.skipped],
            "skipped_reasons": dict(self.skipped),
        }

    def result(self) -> dict:
        if not self.kind.characters:
            return score_kind(self.kept, self.kind_name, self.skipped_fields())
        c, n = self.counts, self.counts["done"]
        result = {
            **self.skipped_fields(),
            "captcha_accuracy": c["captchas_right"] / n if n else 0.0,
            "captcha_accuracy_ci95": wilson(c["captchas_right"], n),
            "char_accuracy": c["chars_right"] / c["chars_total"] if c["chars_total"] else 0.0,
            "per_position_accuracy": [r / t if t else None for r, t in zip(self.pos_right, self.pos_total)],
            "confusion_labels": self.labels,
            "confusion_matrix": self.confusion.tolist(),
            "most_confused": [{"truth": t, "guess": g, "count": k} for (t, g), k in self.confused.most_common(10)],
            "ignore_case": self.ignore_case,
            "kind": self.kind_name,
            **self.kind.text_fields(self.kind_counts, wilson),
        }
        if c["with_boxes"]:
            result["segmentation_rate"] = c["count_right"] / c["with_boxes"]
        if c["boxes_scored"]:
            result["segmentation_box_rate"] = c["boxes_right"] / c["boxes_scored"]
        return result


def score(items, charset: str, ignore_case: bool = False, kind: str = "text") -> dict:
    """Results of one attacker on `items` (attack.Item with a reading), all at once (Tally)."""
    return Tally(charset, ignore_case, kind).add(items).result()


def score_kind(done, kind: str, skipped: dict) -> dict:
    """Results on CAPTCHAs of a kind other than text, in the same shape as text's: the kind's
    scorer gives the successes and the per-unit accuracy of the read items `done`, and its own
    measures; `skipped`: the counts and the challenges left out (Tally.skipped_fields)."""
    measured = get_kind(kind).score(done)
    n = len(done)
    rates = {"captcha_accuracy": measured["success"], **measured.get("rates", {})}
    shares = {
        field: value
        for name, k in rates.items()
        for field, value in ((name, k / n if n else 0.0), (f"{name}_ci95", wilson(k, n)))
    }
    return {
        **skipped,
        "kind": kind,
        **shares,
        "char_accuracy": measured["unit_accuracy"],
        **measured["fields"],
    }
