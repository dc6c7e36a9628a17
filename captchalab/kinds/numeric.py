"""Kinds answered by one number within a tolerance: sliders (pixels) and rotations (degrees).

- `slider`: the question is `{"y": the piece's top}` and the piece itself (an RGBA image,
  NAME.piece.png, handed to the attacker as `question["piece"]`); the answer is the x of the
  gap's left edge in background pixels ("137"). labels.csv: `filename,y,x`.
- `rotation`: no question; the answer is the clockwise turn in whole degrees, [0, 360), that
  makes the round picture upright ("270"). labels.csv: `filename,angle`.
"""

from __future__ import annotations

import cv2
import numpy as np

from .base import LOWER_BOUND_NOTE, Kind, interval, number, pct, plain_reply, trained


class NumberKind(Kind):
    """A kind whose answer is one whole number, passing within `tolerance` of the truth; reports
    give the share within each of `shown` and the mean and median error in `measure`."""

    unit = "challenge"
    unit_definition = "the share of challenges answered within the tolerance (the success rate)"
    tolerance: float = 0
    shown: tuple = ()
    measure: str = ""  # the error's unit in report.json's field names (px, degrees)

    def units(self, answer):
        return 1

    def error(self, truth: str, guess: str, details: dict | None) -> float | None:
        """How far a guess is from the truth; None when it is not a number."""
        guess = guess.strip()
        return abs(int(guess) - int(truth)) if guess.lstrip("-").isdigit() else None

    def correct(self, truth, guess, ignore_case=False):
        error = self.error(truth, guess, None)
        return error is not None and error <= self.tolerance

    def score(self, items):
        errors = [self.error(it.text, it.reading.text, getattr(it, "details", None)) for it in items]
        return score_errors(errors, self.tolerance, self.shown, self.measure)

    def report_table(self, result):
        m = self.measure
        lines = [
            "",
            f"| attacker | success (within {self.tolerance:g} {m}) | 95% interval | "
            + " | ".join(f"within {t:g} {m}" for t in self.shown)
            + f" | mean error ({m}) | median error ({m}) | no answer | challenges/s | read | skipped | training |",
            "|---" * (len(self.shown) + 10) + "|",
        ]
        for name, r in result["per_attacker"].items():
            within = r.get(f"within_{m}") or {}
            lines.append(
                f"| {name} | {pct(r['captcha_accuracy'])} | {interval(r.get('captcha_accuracy_ci95'))} | "
                + " | ".join(pct(within.get(str(t))) for t in self.shown)
                + f" | {_value(r.get(f'mean_abs_error_{m}'))} | {_value(r.get(f'median_abs_error_{m}'))} | "
                f"{r.get('no_answer', 0)} | {r.get('captchas_per_second') or '-'} | {r['count']} | "
                f"{r['skipped']} | {trained(r.get('state'))} |"
            )
        return lines + [
            "",
            f"Success is single-attempt: the answer within {self.tolerance:g} {m} of the truth "
            f"(`tolerance_{m}` in report.json; `char_accuracy` is the same share). The mean and median "
            f'errors are over the challenges answered with a number; "no answer" counts the others.',
            "",
            LOWER_BOUND_NOTE,
        ]

    def summary(self, r):
        error = r.get(f"mean_abs_error_{self.measure}")
        return f", mean error {error:.1f} {self.measure}" if error is not None else ""

    def describe_reading(self, found, truth):
        return f"answers {found or '?'} {self.measure}" + (f" (truth {truth})" if truth is not None else "")

    def page_answer(self, answer, question):
        value = number(answer)
        if value is None:
            raise ValueError("a number is expected")
        return str(round(value))

    def typed_answer(self, text, question):
        try:
            value = float(text)
        except ValueError:
            raise ValueError("not a number") from None
        return self.page_answer(value, question)

    def solver_answer(self, reply, question, charset):
        text = plain_reply(reply)
        if not text.lstrip("-").isdigit():  # one whole number, as asked
            raise ValueError("not a whole number")
        return self.page_answer(int(text), question)

    def page_value(self, truth, question):
        return int(truth)


def _value(v) -> str:
    return "-" if v is None else f"{v:.1f}"


def score_errors(errors: list, tolerance: float, shown: tuple, unit: str) -> dict:
    """A kind answered by one number (pixels, degrees) from each answer's error (None: no usable
    answer): success within `tolerance`, the share within each of `shown`, mean and median."""
    known = [e for e in errors if e is not None]
    n = len(errors)
    success = sum(e is not None and e <= tolerance for e in errors)
    within = {str(t): (sum(e is not None and e <= t for e in errors) / n if n else 0.0) for t in shown}
    return {
        "success": success,
        "unit_accuracy": success / n if n else 0.0,
        "fields": {
            f"tolerance_{unit}": tolerance,
            f"within_{unit}": within,
            "no_answer": errors.count(None),
            f"mean_abs_error_{unit}": float(sum(known) / len(known)) if known else None,
            f"median_abs_error_{unit}": float(sorted(known)[len(known) // 2]) if known else None,
        },
    }


class SliderKind(NumberKind):
    """ "Drag the piece into the gap": the page serves the background (the image) and the piece (an
    RGBA part, `NAME.piece.png`) at height `y`; the answer is the x of the gap's left edge, in
    background pixels. Success: within `tolerance` pixels."""

    name, columns, default_attacker, example_style = "slider", ("y", "x"), "locator", "slider"
    question_parts = (("piece", True),)  # shown to the solver with the question (with its transparency)
    tolerance, shown, measure = 5, (1, 2, 5, 10, 20), "px"
    widget, trajectory = "slider", True
    asks = "Drag the slider until the piece fits the gap."
    page_question = ("y",)

    def row(self, question, answer):
        return [str(question["y"]), answer]

    def parse_row(self, cells):
        y, x = cells["y"].strip(), cells["x"].strip()
        if not y.isdigit() or not x.isdigit():
            raise ValueError(f"y {y!r} and x {x!r} must be whole numbers of pixels")
        return {"y": int(y)}, str(int(x))

    def check_challenge(self, challenge, image):
        piece = (challenge.parts or {}).get("piece")
        if piece is None:
            return ["a slider challenge must carry its piece in parts['piece']"]
        piece = np.asarray(piece)
        if piece.ndim != 3 or piece.shape[2] != 4 or piece.dtype != np.uint8:
            return [f"the piece must be an RGBA (HxWx4 uint8) image, got shape {piece.shape} {piece.dtype}"]
        height, width = image.shape[:2]
        if piece.shape[0] > height or piece.shape[1] > width:
            return [f"the piece ({piece.shape[1]}x{piece.shape[0]}) is larger than the background ({width}x{height})"]
        try:  # (an answer or y that is not a number is reported with the labels row)
            x, y = int(challenge.answer), int(challenge.question["y"])
        except (ValueError, KeyError, TypeError):
            return []
        problems = []
        if x + piece.shape[1] > width:
            problems.append(f"x {x} puts the piece outside the {width}-pixel-wide background")
        if y + piece.shape[0] > height:
            problems.append(f"y {y} puts the piece outside the {height}-pixel-high background")
        return problems

    def explore_images(self, image, question, parts, found, truth):
        """The piece laid where the reader puts it, a red line at that x and a green one at the gap's."""
        out = image.copy()
        piece = (parts or {}).get("piece")
        guess = found.strip()
        if piece is not None and guess.lstrip("-").isdigit():
            x, y = int(guess), int(question["y"])
            h, w = piece.shape[:2]
            x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, out.shape[1]), min(y + h, out.shape[0])
            if x1 > x0 and y1 > y0:
                cut = piece[y0 - y : y1 - y, x0 - x : x1 - x]
                alpha = cut[..., 3:4].astype(np.float32) / 255.0
                out[y0:y1, x0:x1] = (alpha * cut[..., :3] + (1 - alpha) * out[y0:y1, x0:x1]).astype(np.uint8)
            cv2.line(out, (x, 0), (x, out.shape[0] - 1), (40, 40, 214), 1)
        if truth is not None:
            cv2.line(out, (int(truth), 0), (int(truth), out.shape[0] - 1), (44, 160, 44), 1)
        return [("the piece where it was put", out)] + super().explore_images(image, question, parts, found, truth)

    def solver_prompt(self, question, charset, length):
        return (
            "The first picture is a background with a gap cut out of it; the second is the piece that "
            f"fills the gap, its top {question['y']} pixels from the background's top. Reply with one "
            "whole number: how many pixels from the background's left edge the gap's left edge is. "
            "Reply with the number alone."
        )

    def page_answer(self, answer, question):
        text = super().page_answer(answer, question)
        if not -10_000 <= int(text) <= 10_000:
            raise ValueError("the x is outside the image")
        return text

    def wrong_value(self, truth, question, charset, rng):
        offset = int(rng.integers(self.tolerance + 3, 40))
        return int(truth) - offset if int(truth) >= offset and rng.random() < 0.5 else int(truth) + offset


def angle_error(truth: float, guess: float, symmetry: int = 1) -> float:
    """The smallest turn, in degrees, between two angles, counting the `symmetry` equivalent
    answers of content that looks the same every 360/symmetry degrees."""
    period = 360.0 / max(1, symmetry)
    difference = (guess - truth) % period
    return min(difference, period - difference)


class RotationKind(NumberKind):
    """ "Turn the picture upright": the image is a round picture turned by an unknown angle; the
    answer is the clockwise turn, in whole degrees in [0, 360), that makes it upright. A picture
    that looks the same every 360/k degrees (its `symmetry` k, in challenges.json) is scored
    against all k equivalent answers. Success: within `tolerance` degrees."""

    name, columns, default_attacker, example_style = "rotation", ("angle",), "rotnet", "rotation"
    tolerance, shown, measure = 10, (5, 10, 20, 45, 90), "degrees"
    widget = "dial"
    asks = "Turn the picture upright with the slider, then let go."

    def row(self, question, answer):
        return [answer]

    def parse_row(self, cells):
        angle = cells["angle"].strip()
        if not angle.isdigit() or not 0 <= int(angle) < 360:
            raise ValueError(f"angle {angle!r} is not whole degrees in [0, 360)")
        return {}, str(int(angle))

    def error(self, truth, guess, details):
        guess = guess.strip()
        symmetry = int((details or {}).get("symmetry", 1))
        return angle_error(int(truth), int(guess), symmetry) if guess.isdigit() else None

    def check_challenge(self, challenge, image):
        problems = []
        symmetry = (challenge.details or {}).get("symmetry", 1)
        if not isinstance(symmetry, int) or isinstance(symmetry, bool) or not 1 <= symmetry <= 360:
            problems.append(f"details['symmetry'] must be a whole number 1-360, got {symmetry!r}")
        return problems

    def explore_images(self, image, question, parts, found, truth):
        """The picture turned back by the reader's answer."""
        h, w = image.shape[:2]
        turn = int(found) if found.strip().isdigit() else 0
        upright = cv2.warpAffine(
            image, cv2.getRotationMatrix2D((w / 2, h / 2), -turn, 1.0), (w, h), borderValue=(255, 255, 255)
        )
        return [("turned back by the reader's answer", upright)]

    def solver_prompt(self, question, charset, length):
        return (
            "This round picture has been turned away from upright. Reply with one whole number of "
            "degrees, 0 to 359: the clockwise turn that makes it upright. Reply with the number alone."
        )

    def page_answer(self, answer, question):
        return str(int(super().page_answer(answer, question)) % 360)

    def wrong_value(self, truth, question, charset, rng):
        return (int(truth) + int(rng.integers(self.tolerance + 5, 360 - self.tolerance - 5))) % 360
