"""Answers collected elsewhere (a crowd-sourcing platform's CSV) joined to a human study: each
row scored by its kind's rule, worker ids hashed with the study's secret, repeats and unknown
items refused and counted."""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import math
from collections import Counter
from pathlib import Path

from ..errors import CaptchalabError
from ..fileio import atomic_write_text
from ..kinds import get_kind
from .designs import design_key
from .answers import POINTERS, Rejected, clean_ms
from .pool import HumanStudy, StudyItem
from .records import FORMAT, load_answers

IMPORT_COLUMNS = ("worker", "dataset", "item", "answer")


def import_answers(study: HumanStudy, csv_path: Path, drop_workers: bool = False) -> dict:
    """Answers from a CSV (`worker,dataset,item,answer[,ms][,pointer]`; answers written as the
    kind's labels write them) into the study. Worker ids become a hash salted with the study's
    secret (or are dropped: every row its own anonymous participant). Rows naming an item the study
    does not hold, malformed rows and repeats (same worker and item, here or already recorded) are
    refused and counted; nothing is recorded if none is usable."""
    try:
        raw = Path(csv_path).read_bytes()
    except OSError as exc:
        raise CaptchalabError(f"cannot read {csv_path}: {exc.strerror or exc}") from None
    if len(raw) > 50 * 2**20:
        raise CaptchalabError(f"{csv_path}: {len(raw) / 2**20:.0f} MB is too large for an answers file")
    digest = hashlib.sha256(raw).hexdigest()[:16]
    target = study.log.folder / f"import-{digest}.jsonl"
    if target.exists():
        raise CaptchalabError(f"{csv_path} was imported already")
    try:
        rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise CaptchalabError(f"{csv_path}: not a UTF-8 CSV file ({exc})") from None
    header = [h.strip().lower() for h in (rows[0].keys() if rows else [])]
    missing = [c for c in IMPORT_COLUMNS if c not in header]
    if missing:
        raise CaptchalabError(
            f"{csv_path}: the header must name {','.join(IMPORT_COLUMNS)}[,ms][,pointer]; missing {', '.join(missing)}"
        )
    existing, _ = load_answers(study.folder)
    taken = {(a["participant"], a["dataset"], a["item"]) for a in existing}
    refused, records = Counter(), []
    for n, row in enumerate(rows, start=2):
        row = {(k or "").strip().lower(): (v or "").strip() if isinstance(v, str) else "" for k, v in row.items()}
        item = study.by_key.get((row["dataset"], row["item"]))
        if item is None:
            refused["unknown item"] += 1
            continue
        if drop_workers:
            participant = f"anon-{digest}-{n}"
        elif row["worker"]:
            participant = "w-" + hmac.new(study.secret, row["worker"].encode(), hashlib.sha256).hexdigest()[:16]
        else:
            refused["no worker id"] += 1
            continue
        if (participant, item.dataset, item.name) in taken:
            refused["duplicate"] += 1
            continue
        try:
            answer = _csv_answer(item, row["answer"])
        except Rejected:
            refused["malformed answer"] += 1
            continue
        ms = row.get("ms", "")
        taken.add((participant, item.dataset, item.name))
        records.append(
            {
                "format": FORMAT,
                "participant": participant,
                "source": "import",
                "phase": "main",
                "seq": n - 1,
                "dataset": item.dataset,
                "item": item.name,
                "kind": item.kind,
                "design": item.design,
                "design_key": design_key(item.design),
                "answer": answer,
                "truth": item.truth,
                "correct": study.correct(item, answer),
                "ms": clean_ms(float(ms)) if _number(ms) else None,
                "server_ms": None,
                "pointer": row.get("pointer", "") if row.get("pointer", "") in POINTERS else "",
                "trajectory": None,
                "replays": None,
            }
        )
    if not records:
        raise CaptchalabError(f"{csv_path}: no usable answer ({', '.join(f'{v} {k}' for k, v in refused.items())})")
    atomic_write_text(target, "".join(json.dumps(r, sort_keys=True, separators=(",", ":")) + "\n" for r in records))
    return {"imported": len(records), "refused": dict(refused), "file": str(target)}


def _number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _csv_answer(item: StudyItem, text: str) -> str:
    try:
        return get_kind(item.kind).typed_answer(text, item.question)
    except ValueError as exc:
        raise Rejected(400, "malformed answer", str(exc)) from None
