"""The Kind interface, the one table of kinds, and the wording report tables share.

A kind is one object that every layer asks (nothing else branches on a kind's name): what a
dataset stores beside each image and how its labels are written and read back, the answer's type
and how it passes, the scorer and its measures, the report's table and sections, how a misread
challenge is drawn, the study page's widget and how a page's answer is written, what a simulated
person answers, and what explore draws. A new kind subclasses `Kind` and calls `register_kind`
(from a style plugin's module, say) before a style names it.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from ..errors import CaptchalabError

LOWER_BOUND_NOTE = (
    "A **lower bound** is a number from an attacker that had not converged (it was still "
    "improving when its budget ended, underfitted, or was fine-tuned from one that had not "
    "converged): a patient attacker reads at least this much. Intervals are Wilson 95% "
    "intervals over the CAPTCHAs attacked."
)


def pct(value) -> str:
    return f"{value:.2%}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "-"


def interval(ci) -> str:
    return f"{ci[0]:.1%}-{ci[1]:.1%}" if ci else "-"


def trained(state: dict | None) -> str:
    """How a report names an attacker's training state."""
    state = state or {}
    if state.get("converged"):
        return "converged"
    if state.get("lower_bound"):
        return "**lower bound**: had not converged (" + "; ".join(state.get("reasons") or []) + ")"
    return "; ".join(state.get("reasons") or []) or "-"


def number(value) -> float | None:
    """A finite number from a page's JSON answer (not a bool), else None."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def unanswered(reading) -> bool:
    """Whether an attacker gave no answer at all (a Reading whose details hold a "failure"): such a
    challenge fails whatever its answer would be (an empty selection passes a grid without the
    prompt's object; no answer never does)."""
    return "failure" in (getattr(reading, "details", None) or {})


def plain_reply(reply: str) -> str:
    """A model's reply without what wraps an answer: a reasoning model's <think> block, code
    fences, surrounding quotes or backticks, and a final full stop."""
    text = reply.split("</think>")[-1].strip()
    if text.startswith("```") and text.endswith("```") and len(text) >= 6:
        text = text[3:-3].strip()
        first, _, rest = text.partition("\n")
        text = rest.strip() if rest and first.isalpha() else text  # a fence's language name
    while len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'`*":
        text = text[1:-1].strip()
    return text[:-1].strip() if text.endswith(".") else text


class Kind:
    """What one kind of CAPTCHA is. Subclasses fill in the fields and override what differs."""

    name: ClassVar[str] = ""
    columns: ClassVar[tuple[str, ...]] = ()  # labels.csv header, after filename
    other_columns: ClassVar[tuple[tuple[str, ...], ...]] = ()  # other headers its labels may have
    # the kind whose attackers read this one ('': its own): arithmetic CAPTCHAs are read as text,
    # and the kind's own answer rule judges what was read
    read_as: ClassVar[str] = ""
    unit: ClassVar[str] = ""  # what char_accuracy counts
    unit_definition: ClassVar[str] = ""  # how (report.json's char_accuracy_definition)
    default_attacker: ClassVar[str] = ""  # what `train captcha` trains when no --attacker is named
    audit_readers: ClassVar[tuple[str, ...]] = ()  # trained readers `audit` fields beyond the default and the style's
    question_parts: ClassVar[tuple[tuple[str, bool], ...]] = ()  # images shown with the question (name, alpha)
    example_style: ClassVar[str] = ""  # a built-in style of this kind (explore draws from it)
    # answers are strings of characters from a character set: its styles render a text they are
    # given (Generator.render), its attackers and datasets carry that set; the other kinds' styles
    # draw whole challenges (Generator.challenge) and their readers learn object classes instead
    characters: ClassVar[bool] = False
    # what a challenge's main file holds: "image" (HxWx3 uint8 BGR pixels, PNG) or "audio" (1-D int16
    # samples at sound.SAMPLE_RATE, WAV); the data layer reads and writes it (data/media.py), and
    # `picture` says how reports, sheets and pages draw it
    media: ClassVar[str] = "image"
    drawn_file: ClassVar[str] = "challenges.json"  # what the style drew, per image (Drawn.details)
    # the study page: its control (text: a typed answer; tiles: squares to select; slider: drag a
    # piece along x; dial: turn a round picture), the instruction (formatted with the question) and
    # which question fields the page sees; `trajectory`: the page records the drag's path
    widget: ClassVar[str] = "text"
    asks: ClassVar[str] = "Type your answer."
    page_question: ClassVar[tuple[str, ...]] = ()
    trajectory: ClassVar[bool] = False
    replays: ClassVar[bool] = False  # the page counts how often the challenge was played again (audio)
    # explore: "text" (an uploaded picture read, segments and time steps), "tiles" (an uploaded grid
    # with a prompt) or "challenge" (a generated challenge read whole, beside its truth)
    view: ClassVar[str] = "challenge"
    per_style_columns: ClassVar[tuple[tuple[str, str], ...]] = (("captcha_accuracy", "success"),)

    # -- labels ----------------------------------------------------------------------------
    def row(self, question: Any, answer: str) -> list[str]:
        """The labels.csv cells after the filename."""
        raise NotImplementedError

    def parse_row(self, cells: dict[str, str]) -> tuple[Any, str]:
        """(question, answer) from a labels.csv row's cells by column name; ValueError says why not."""
        raise NotImplementedError

    def units(self, answer: str) -> int:
        """How many units (characters, selected tiles) an answer holds: a Reading's confidence
        has one probability per unit."""
        return 1

    def untrainable(self, answer: str) -> str:
        """Why a labelled answer cannot teach a reader ("" when it can): an arithmetic label that
        holds the value alone does not say what is drawn."""
        return ""

    def check_challenge(self, challenge, image: np.ndarray) -> list[str]:
        """What a style's challenge breaks of this kind's promises beyond its labels row (which
        check_style reads back for every kind), in words."""
        return []

    # -- scoring ---------------------------------------------------------------------------
    def correct(self, truth: str, guess: str, ignore_case: bool = False) -> bool:
        """Whether an answer passes (training judges its validation CAPTCHAs by this)."""
        return guess == truth

    def kept(self, item):
        """What of a read item `score` needs, kept until the attack ends (one per challenge): the item
        itself, or a smaller stand-in with the attributes `score` reads."""
        return item

    def score(self, items) -> dict:
        """Scored items (truth `text`, `question`, the reading) -> {"success": count, "unit_accuracy":
        share, "rates": {name: successes} (each reported as a share with its 95% interval),
        "fields": the kind's other measures for report.json} (text is scored by score.score)."""
        success = sum(self.correct(it.text, it.reading.text) for it in items)
        return {"success": success, "unit_accuracy": success / len(items) if items else 0.0, "fields": {}}

    # -- reports ---------------------------------------------------------------------------
    def report_table(self, result: dict) -> list[str]:
        """The report's first table: one row per attacker, then what its columns mean."""
        lines = [
            "",
            "| attacker | success | 95% interval | challenges/s | read | skipped | training |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, r in result["per_attacker"].items():
            lines.append(
                f"| {name} | {pct(r['captcha_accuracy'])} | {interval(r.get('captcha_accuracy_ci95'))} | "
                f"{r.get('captchas_per_second') or '-'} | {r['count']} | {r['skipped']} | "
                f"{trained(r.get('state'))} |"
            )
        return lines + ["", f"Success is single-attempt ({self.unit_definition}).", "", LOWER_BOUND_NOTE]

    def summary(self, r: dict) -> str:
        """What the terminal's line says beside success (", mean error 3.1 px"), from one attacker's result."""
        return ""

    def attacker_lines(self, r: dict) -> list[str]:
        """One attacker's own section of the report (its measures beyond the table)."""
        return self.per_style_lines(r)

    def per_style_lines(self, r: dict) -> list[str]:
        if not r.get("per_style"):
            return []
        names = [title for _, title in self.per_style_columns]
        lines = ["| style | " + " | ".join(names) + " | count |", "|---" * (len(names) + 2) + "|"]
        for style, rs in r["per_style"].items():
            lines.append(
                f"| {style} | "
                + " | ".join(pct(rs.get(key)) for key, _ in self.per_style_columns)
                + f" | {rs['count']} |"
            )
        return lines

    def picture(self, media: np.ndarray) -> np.ndarray:
        """A challenge's media drawn as an HxWx3 BGR picture (contact sheets, sweep examples):
        pictures are themselves (grey ones in colour)."""
        if media.ndim == 2:
            import cv2

            return cv2.cvtColor(media, cv2.COLOR_GRAY2BGR)
        return media

    def seen(self, image: np.ndarray, item) -> np.ndarray:
        """A misread challenge as the attacker saw it (its picture alone unless the kind draws more)."""
        return self.picture(image)

    def caption(self, item) -> str:
        """A misread challenge's caption: truth -> guess."""
        return f"{item.text or '-'} -> {item.reading.text or '?'}"

    def describe_reading(self, found: str, truth: str | None) -> str:
        """What an attacker's answer says, in words (explore)."""
        return f"answers {found or '?'}" + (f" (truth {truth})" if truth is not None else "")

    def explore_images(self, image: np.ndarray, question: Any, parts: dict, found: str, truth: str | None) -> list:
        """(caption, image) pairs explore shows for a reading besides the challenge itself (`truth`:
        the answer, None for an uploaded challenge)."""
        return [(name, part) for name, part in (parts or {}).items()]

    # -- people ----------------------------------------------------------------------------
    def page_answer(self, answer: Any, question: Any) -> str:
        """The study page's JSON answer written as labels write it; ValueError says why it cannot be."""
        if not isinstance(answer, str) or len(answer) > 64 or any(ord(c) < 32 for c in answer):
            raise ValueError("a text answer is at most 64 printable characters")
        return answer.strip()

    def typed_answer(self, text: str, question: Any) -> str:
        """An answer typed in an imported CSV file, written as labels write it; ValueError if not."""
        return self.page_answer(text, question)

    # -- machines asked in words (the vlm attacker) -------------------------------------------
    def solver_prompt(self, question: Any, charset: str, length: int | None) -> str:
        """What a vision-language model is asked beside the challenge's images (the image, then the
        question's parts in `question_parts` order): the page's task in words and the one form of
        answer it must reply in. "" (the default): the kind cannot be asked this way."""
        return ""

    def solver_answer(self, reply: str, question: Any, charset: str) -> str:
        """A model's reply written as labels write it, read strictly: the reply must be the answer
        alone (`plain_reply` takes off quotes, code fences and a final full stop); ValueError when it
        is not one (the attack counts it as failed, "unparsable answer")."""
        return self.typed_answer(plain_reply(reply), question)

    def page_value(self, truth: str, question: Any) -> Any:
        """The right answer as the page sends it (simulated people)."""
        return truth

    def wrong_value(self, truth: str, question: Any, charset: str, rng: np.random.Generator) -> Any:
        """A plausible wrong answer as the page sends it (simulated people)."""
        return truth + "?"


KINDS: dict[str, Kind] = {}


def register_kind(kind: Kind) -> Kind:
    """Add a kind to the one table (a style names it by `kind = "NAME"`); returns it. Registering
    the same class again is a no-op; another kind under a taken name is refused."""
    if not isinstance(kind, Kind) or not kind.name or not kind.columns:
        raise CaptchalabError("a kind is a Kind instance with a name and its labels.csv columns")
    known = KINDS.get(kind.name)
    if known is not None and type(known) is not type(kind):
        if type(known).__qualname__ == type(kind).__qualname__ and type(known).__module__ == type(kind).__module__:
            KINDS[kind.name] = kind  # the same class loaded again (a plugin folder imported twice)
            return kind
        raise CaptchalabError(f"kind {kind.name!r} is registered already ({type(known).__name__})")
    KINDS.setdefault(kind.name, kind)
    return KINDS[kind.name]


def get_kind(name: str) -> Kind:
    if name not in KINDS:
        raise CaptchalabError(f"unknown CAPTCHA kind {name!r} (known: {', '.join(KINDS)})")
    return KINDS[name]


def kind_of_columns(columns: list[str]) -> Kind | None:
    """The kind whose labels.csv columns a header names (its `columns`, or one of its
    `other_columns`): the one naming the most of them, the first registered among equals (text's
    files are the oldest)."""
    best, most = None, 0
    for kind in KINDS.values():
        for wanted in (kind.columns, *kind.other_columns):
            if all(c in columns for c in wanted) and len(wanted) > most:
                best, most = kind, len(wanted)
    return best


def reads(attacker_kind: str, kind: str) -> bool:
    """Whether an attacker of `attacker_kind` reads CAPTCHAs of `kind` (its own, or the kind it is
    read as)."""
    return attacker_kind == kind or (kind in KINDS and KINDS[kind].read_as == attacker_kind)
