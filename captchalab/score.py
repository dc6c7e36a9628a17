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


def score(items, charset: str, ignore_case: bool = False, kind: str = "text") -> dict:
    """Results of one attacker on `items` (attack.Item with a reading); `charset` orders the
    confusion matrix (truth rows, guess columns; characters outside it are left out). Every kind
    gives `captcha_accuracy` (single-attempt success) and `char_accuracy` (per unit: character or
    tile); a kind other than text adds its own measures (kinds.py)."""
    the_kind = get_kind(kind)
    if not the_kind.characters:
        return score_kind(items, kind)
    done = [it for it in items if not it.skipped]
    labels = fold(charset, ignore_case)
    labels = "".join(dict.fromkeys(labels))
    index = {c: i for i, c in enumerate(labels)}
    confusion = np.zeros((len(labels), len(labels)), np.int64)
    max_len = max((len(it.text) for it in done), default=0)
    pos_right, pos_total = np.zeros(max_len), np.zeros(max_len)
    chars_right = chars_total = captchas_right = count_right = 0
    boxes_scored = boxes_right = with_boxes = 0
    confused: Counter = Counter()
    for it in done:
        truth, guess = fold(it.text, ignore_case), fold(it.reading.text, ignore_case)
        captchas_right += the_kind.correct(truth, guess)
        if not the_kind.spelled(truth):  # a value alone: no characters to compare
            continue
        chars_right += max(0, len(truth) - edit_distance(guess, truth))
        chars_total += len(truth)
        same_length = len(guess) == len(truth)
        for pos, t in enumerate(truth):
            right = same_length and guess[pos] == t
            pos_right[pos] += right
            pos_total[pos] += 1
            if same_length:
                if t in index and guess[pos] in index:
                    confusion[index[t], index[guess[pos]]] += 1
                if not right:
                    confused[(t, guess[pos])] += 1
        boxes = it.reading.boxes
        if boxes is not None:
            with_boxes += 1
            count_right += len(boxes) == len(truth)
            if it.true_boxes is not None:
                boxes_scored += 1
                boxes_right += len(boxes) == len(truth) and all(box_hit(f, t) for f, t in zip(boxes, it.true_boxes))
    n = len(done)
    result = {
        **skipped_fields(items),
        "captcha_accuracy": captchas_right / n if n else 0.0,
        "captcha_accuracy_ci95": wilson(captchas_right, n),
        "char_accuracy": chars_right / chars_total if chars_total else 0.0,
        "per_position_accuracy": [float(r / t) if t else None for r, t in zip(pos_right, pos_total)],
        "confusion_labels": labels,
        "confusion_matrix": confusion.tolist(),
        "most_confused": [{"truth": t, "guess": g, "count": c} for (t, g), c in confused.most_common(10)],
        "ignore_case": ignore_case,
        "kind": kind,
        **the_kind.text_fields(done, wilson),
    }
    if with_boxes:
        result["segmentation_rate"] = count_right / with_boxes
    if boxes_scored:
        result["segmentation_box_rate"] = boxes_right / boxes_scored
    return result


def skipped_fields(items) -> dict:
    done = [it for it in items if not it.skipped]
    return {
        "count": len(done),
        "skipped": len(items) - len(done),
        "skipped_files": [it.name for it in items if it.skipped],
        "skipped_reasons": {it.name: it.error for it in items if it.skipped},
    }


def score_kind(items, kind: str) -> dict:
    """Results on CAPTCHAs of a kind other than text, in the same shape as text's: the kind's
    scorer gives the successes and the per-unit accuracy, and its own measures."""
    done = [it for it in items if not it.skipped]
    measured = get_kind(kind).score(done)
    n = len(done)
    rates = {"captcha_accuracy": measured["success"], **measured.get("rates", {})}
    shares = {
        field: value
        for name, k in rates.items()
        for field, value in ((name, k / n if n else 0.0), (f"{name}_ci95", wilson(k, n)))
    }
    return {
        **skipped_fields(items),
        "kind": kind,
        **shares,
        "char_accuracy": measured["unit_accuracy"],
        **measured["fields"],
    }
