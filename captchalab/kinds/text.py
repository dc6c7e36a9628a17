"""Text CAPTCHAs: no question (a reader may be told the expected length); the answer is the
characters. labels.csv: `filename,text`; a generated dataset keeps each character's box in
boxes.json."""

from __future__ import annotations

import cv2
import numpy as np

from ..charset import fold, in_charset
from .base import LOWER_BOUND_NOTE, Kind, interval, pct, plain_reply, trained


class TextKind(Kind):
    name, columns, unit, default_attacker, example_style = "text", ("text",), "character", "segment", "distorted"
    unit_definition = (
        "character accuracy = sum over CAPTCHAs of max(0, length - edit distance between guess "
        "and truth), divided by the number of true characters"
    )
    characters = True
    audit_readers = ("ctc",)  # a reader that does not segment beside the seed's that does
    drawn_file = "boxes.json"
    asks = "Type the characters you see."
    view = "text"
    per_style_columns = (
        ("captcha_accuracy", "CAPTCHA acc."),
        ("char_accuracy", "char acc."),
        ("segmentation_box_rate", "segmentation (boxes)"),
    )

    def row(self, question, answer):
        return [answer]

    def parse_row(self, cells):
        return None, cells["text"]  # folded and checked against the charset by read_dataset

    def units(self, answer):
        return len(answer)

    def spelled(self, truth: str) -> bool:
        """Whether a true answer is the text drawn (character measures are taken on those only)."""
        return True

    def text_counts(self, items) -> dict[str, int]:
        """What the kind counts beyond the text measures in a chunk of read items (score.Tally adds
        the chunks' counts up, so an attack keeps no reading)."""
        return {}

    def text_fields(self, counts, wilson) -> dict:
        """The kind's measures beyond the text ones, for report.json, from the summed `text_counts`
        (`wilson(k, n)`: an interval)."""
        return {}

    def correct(self, truth, guess, ignore_case=False):
        return fold(guess, ignore_case) == fold(truth, ignore_case)

    def report_table(self, result):
        lines = [
            f"- case {'ignored' if result.get('ignore_case') else 'counted'} when comparing",
            "",
            "| attacker | CAPTCHA accuracy | 95% interval | character accuracy | segmentation vs the "
            "style's boxes | CAPTCHAs/s | read | skipped | training |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for name, r in result["per_attacker"].items():
            lines.append(
                f"| {name} | {pct(r['captcha_accuracy'])} | {interval(r.get('captcha_accuracy_ci95'))} | "
                f"{pct(r['char_accuracy'])} | {pct(r.get('segmentation_box_rate'))} | "
                f"{r.get('captchas_per_second') or '-'} | {r['count']} | {r['skipped']} | "
                f"{trained(r.get('state'))} |"
            )
        return lines + [
            "",
            f"Character accuracy is defined from the edit distance: {result['char_accuracy_definition']}.",
            "The segmentation column compares the boxes a segmenting attacker cut with the boxes the "
            "style drew (a length hint makes the count right by construction, so the count alone "
            "would say nothing). The top-level numbers of report.json are the first attacker's; "
            "every attacker's are under `per_attacker`.",
            "",
            LOWER_BOUND_NOTE,
        ]

    def summary(self, r):
        return f", character accuracy {r['char_accuracy']:.2%}"

    def attacker_lines(self, r):
        lines = [
            "Per position (CAPTCHAs read with the right length): "
            + ", ".join(
                f"{i + 1}: {a:.2%}" for i, a in enumerate(r.get("per_position_accuracy") or []) if a is not None
            )
        ]
        if r.get("most_confused"):
            lines += [
                "",
                "Most confused: " + ", ".join(f"{c['truth']}→{c['guess']} ({c['count']})" for c in r["most_confused"]),
            ]
        per_style = self.per_style_lines(r)
        return lines + ([""] + per_style if per_style else [])

    def seen(self, image, item):
        """The boxes a segmenting attacker cut, drawn on the image, and below them the crops it read."""
        image, reading = self.picture(image), item.reading
        if reading is None or reading.boxes is None:
            return image
        out = image.copy()
        for k, (x0, y0, x1, y1) in enumerate(reading.boxes):
            cv2.rectangle(out, (x0, y0), (x1 - 1, y1 - 1), (0, 0, 255) if k % 2 else (255, 0, 0), 1)
        if reading.crops is not None and len(reading.crops):
            strip = np.hstack([np.pad(c, 1, constant_values=128) for c in reading.crops])
            strip = cv2.cvtColor(strip, cv2.COLOR_GRAY2BGR)
            scale = out.shape[1] / strip.shape[1]
            if scale < 1:
                strip = cv2.resize(
                    strip, (out.shape[1], max(1, round(strip.shape[0] * scale))), interpolation=cv2.INTER_AREA
                )
            canvas = np.full((out.shape[0] + strip.shape[0] + 2, max(out.shape[1], strip.shape[1]), 3), 255, np.uint8)
            canvas[: out.shape[0], : out.shape[1]] = out
            canvas[out.shape[0] + 2 :, : strip.shape[1]] = strip
            out = canvas
        return out

    def describe_reading(self, found, truth):
        return f"reads {found or '?'}" + (f" (truth {truth})" if truth is not None else "")

    def solver_prompt(self, question, charset, length):
        count = f"{length} " if length else ""
        return (
            f"This picture is a text CAPTCHA. Reply with the {count}characters it shows, drawn from "
            f"these: {charset}. Reply with the characters alone, no spaces, no other words."
        )

    def solver_answer(self, reply, question, charset):
        """The reply's characters in the set, in either case or as a look-alike (O for 0 in digits, as
        an OCR engine's are read); a reply of several words, or with a character the set has no
        stand-in for, is not an answer."""
        text = plain_reply(reply)
        words = text.split()
        if len(words) > 1 and not all(len(w) == 1 for w in words):  # "a b c d" is one answer spaced out
            raise ValueError("not one word")
        text = "".join(words)
        read = in_charset(text, charset)
        if not text or len(read) != len(text):
            raise ValueError("characters outside the set")
        return read

    def wrong_value(self, truth, question, charset, rng):
        k = int(rng.integers(len(truth)))
        others = [c for c in charset if c != truth[k]] or ["?"]
        return truth[:k] + str(rng.choice(others)) + truth[k + 1 :]
