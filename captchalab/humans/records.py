"""What a human study records, and where.

A study folder holds `study.json` (the datasets served, the settings, the secret that signs item
tokens and salts imported worker ids), `answers/` with one append-only JSON-lines file per
participant (each answer is written and fsynced as it arrives: a crash or a closed tab loses at
most the item on screen) and `rejections.json` (requests refused, counted by reason).

One answer is one JSON object on one line (format 1; fields are added, never renamed):

    participant  an opaque id made when the page starts ("p-" + 16 random hex + 16 hex signing it
                 under the study's secret, so a restarted server knows it); imported answers
                 carry "w-" + a salted hash of the worker id, or "anon-N" when ids are dropped
    source       "page", "import" or "simulated"
    phase        "practice" (feedback shown, not scored), "attention" (a plain CAPTCHA anyone
                 attending reads) or "main"
    dataset      the dataset's label (its folder name); item: the image's filename in it
    kind         text, grid, slider or rotation; design: {style, parameters, strength, eps, kind}
    answer       the answer as its kind writes labels (kinds.py); truth: the label
    correct      scored by the kind's rule, the attackers' rule (case folded with ignore_case)
    ms           client-measured milliseconds from the image appearing to the answer (null if
                 the page sent none); server_ms: from serving the item to receiving the answer
    pointer      mouse, touch, pen or keyboard (how the answer was given; "" if unknown)
    trajectory   sliders: [[ms since the image appeared, x in image pixels], ...]; else null
    replays      audio: how often the participant played the challenge again; else null
    seq          the answer's position in the participant's sequence
    answer_id    the page's id for this answer (8-64 letters, digits, - or _; null if none was
                 sent): an answer sent again with a recorded id is recognised and not written

No names, addresses, IPs, user agents or wall-clock times are stored.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

from ..errors import CaptchalabError
from ..kinds import KINDS

FORMAT = 1
ANSWERS = "answers"
PHASES = ("practice", "attention", "main")
SOURCES = ("page", "import", "simulated")


class AnswerLog:
    """Append-only answer files, one per participant; every line is durable once `append` returns."""

    def __init__(self, folder: Path):
        self.folder = Path(folder) / ANSWERS
        self.folder.mkdir(parents=True, exist_ok=True)

    def append(self, record: dict) -> None:
        participant = record["participant"]
        if not participant.replace("-", "").isalnum():  # ids are ours; never a path
            raise ValueError(f"bad participant id {participant!r}")
        line = (json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n").encode()
        with open(self.folder / f"{participant}.jsonl", "a+b") as f:
            if f.seek(0, os.SEEK_END) > 0:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":  # a torn last line (a crash mid-write): never glued to it
                    line = b"\n" + line
            f.write(line)
            f.flush()
            os.fsync(f.fileno())


def check_study_folders(folders) -> list[Path]:
    """The folders, each a human-study folder (holding study.json), or a one-line error now rather
    than after a long run."""
    for folder in folders:
        if not (Path(folder) / "study.json").is_file():
            raise CaptchalabError(
                f"`humans` {folder} is not a human-study folder (no study.json; see `captchalab humans --out`)"
            )
    return [Path(f) for f in folders]


def load_answers(folder: Path) -> tuple[list[dict], dict]:
    """Every answer in a study folder, each (participant, dataset, item, phase) once (the first),
    and what was skipped: {"malformed": lines that are not an answer, "duplicate": repeats}."""
    root = Path(folder) / ANSWERS
    if not Path(folder).is_dir():
        raise CaptchalabError(f"human study folder {folder} does not exist")
    seen, answers, skipped = set(), [], Counter()
    for path in sorted(root.glob("*.jsonl")) if root.is_dir() else []:
        try:
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError as exc:
            raise CaptchalabError(f"cannot read {path}: {exc.strerror or exc}") from None
        for line in lines:
            record = _parse(line)
            if record is None:
                skipped["malformed"] += line.strip() != ""  # a torn last line of a crash, or junk
                continue
            key = (record["participant"], record["dataset"], record["item"], record["phase"])
            if key in seen:
                skipped["duplicate"] += 1
                continue
            seen.add(key)
            answers.append(record)
    return answers, dict(skipped)


def _parse(line: str) -> dict | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        return None
    design = record.get("design")
    number = (int, float)
    ok = (
        all(isinstance(record.get(k), str) for k in ("participant", "dataset", "item", "answer", "truth"))
        and record.get("kind") in KINDS
        and record.get("phase") in PHASES
        and record.get("source") in SOURCES
        and isinstance(record.get("correct"), bool)
        and isinstance(design, dict)
        and isinstance(design.get("style"), str)
        and isinstance(design.get("parameters"), dict)
        and isinstance(design.get("strength"), number)
        and isinstance(design.get("eps"), number)
        and (record.get("ms") is None or isinstance(record.get("ms"), number))
    )
    return record if ok else None


def excluded_participants(answers: list[dict]) -> set[str]:
    """Participants who failed an attention check: their answers are left out of results."""
    return {a["participant"] for a in answers if a["phase"] == "attention" and not a["correct"]}
