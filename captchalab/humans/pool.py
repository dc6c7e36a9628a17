"""The study behind the human page: which CAPTCHA each participant sees next, and what an answer
records. No web code here (server.py serves it; tests and notebooks drive it directly).

- Items are every usable row of the datasets given. A few are set aside as practice (shown first,
  with feedback; their answers are kept but not scored); attention checks are plain CAPTCHAs of
  three digits (the `clean` style at strength 0) mixed into the main items, for page participants.
- Each participant sees up to `per_person` main items, in random order, blind to the design, and
  never an item twice. The next item is one of the least answered, from the least answered design
  (designs stay balanced), up to `answers_per_item` different people per item; an item on screen
  is held for its participant for `hold` seconds (a closed tab frees it then).
- Every item served carries a token (an HMAC under the study's secret): an answer must bring a
  token served to that participant and not yet answered; anything else is refused and counted.
- A server killed and started again on the same folder goes on: a participant's id is signed
  under the study's secret, so the restarted server rebuilds who they are and what they have
  answered from the answer files; each answer carries an id from the page, so an answer sent
  again after the restart (its reply lost with the server) is recognised and recorded once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..data.dataset import GenerationSpec, Source, read_dataset, render_one
from ..errors import CaptchalabError
from ..fileio import atomic_write_json
from ..kinds import get_kind
from .answers import POINTERS, Rejected, clean_ms, normalise_answer, replays_of, trajectory_of
from .designs import design, design_key, design_of_manifest
from .records import FORMAT, AnswerLog, load_answers

STUDY_FILE = "study.json"
ANSWER_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
CONSENT = (
    "This page is part of a study of how well people solve CAPTCHAs. You will be shown a few "
    "CAPTCHAs and asked to solve each as you would on a website; it takes a few minutes. We record "
    "your answers, how long each took and whether you used a mouse, touch or pen; nothing that "
    "identifies you (no name, no address, no IP address). You may stop at any time by closing "
    "the page; the answers given so far are kept."
)


@dataclass
class StudySettings:
    answers_per_item: int = 3  # k: different people per item (agreement needs at least 2)
    per_person: int = 20  # main items per participant
    practice: int = 2  # practice items per kind present
    attention: int = 2  # attention checks per page participant
    hold: float = 600.0  # seconds an item on screen stays reserved for its participant
    ignore_case: bool = False  # text answers compared case-folded (as attack --ignore-case)
    consent: str = CONSENT

    def check(self) -> None:
        for name, low in (("answers_per_item", 1), ("per_person", 1), ("practice", 0), ("attention", 0)):
            if getattr(self, name) < low:
                raise CaptchalabError(f"`{name}` must be at least {low}, got {getattr(self, name)}")
        if self.hold <= 0:
            raise CaptchalabError(f"`hold` must be positive, got {self.hold}")


@dataclass(frozen=True)
class StudyItem:
    dataset: str  # the dataset's label (its folder name)
    name: str  # the image's filename in it
    kind: str
    question: dict | None
    truth: str
    design: dict
    index: int  # row in the dataset (attention checks: their draw index)

    @property
    def key(self) -> tuple[str, str]:
        return self.dataset, self.name


@dataclass
class Served:
    token: str
    item: StudyItem
    phase: str
    image: np.ndarray
    parts: dict
    position: int  # 1-based, among this participant's items
    total: int


@dataclass
class Participant:
    id: str
    source: str
    plan: list[str]  # phases still to come, in order
    seen: set = field(default_factory=set)
    pending: dict = field(default_factory=dict)  # token -> (item, phase, served_at)
    answered: set = field(default_factory=set)  # tokens answered
    seq: int = 0


class HumanStudy:
    """A study folder opened for serving (and for import): items, assignment, tokens, scoring."""

    def __init__(self, folder: Path, datasets: list[Path], settings: StudySettings, secret: bytes):
        self.folder, self.settings, self.secret = Path(folder), settings, secret
        self.sources, self.items, labels = {}, [], set()
        for path in datasets:
            ds = read_dataset(path, None, settings.ignore_case)
            label = Path(path).resolve().name
            if label in labels:
                raise CaptchalabError(f"two datasets are named {label!r}: give folders with different names")
            labels.add(label)
            self.sources[label] = Source(dataset=ds)
            d = design_of_manifest(ds.manifest) or design(f"dataset:{label}", {}, 0.0, 0.0, ds.kind)
            for i, (name, truth) in enumerate(zip(ds.filenames, ds.texts)):
                question = ds.questions[i] if ds.questions else None
                self.items.append(StudyItem(label, name, ds.kind, question, truth, d, i))
        if not self.items:
            raise CaptchalabError("the datasets hold no CAPTCHA to show")
        self.log = AnswerLog(self.folder)
        rng = np.random.default_rng(int.from_bytes(hashlib.sha256(secret).digest()[:8], "big"))
        self.rng = rng
        self.practice = self._practice_items(rng)
        practice_keys = {it.key for it in self.practice}
        self.main = [it for it in self.items if it.key not in practice_keys]
        self.by_key = {it.key: it for it in self.items}
        self.design_of = {it.key: design_key(it.design) for it in self.items}
        self.answered = Counter()  # item key -> main answers recorded
        self.people = {}  # item key -> participants who answered it (any phase)
        self.answer_ids = {}  # answer id -> (participant, what its reply said)
        self.history = {}  # participant -> their answers (phase, item key, seq), to rebuild them after a restart
        answers, _ = load_answers(self.folder)
        for a in answers:
            key = (a["dataset"], a["item"])
            if a["phase"] == "main" and key in self.by_key:
                self.answered[key] += 1
            self.people.setdefault(key, set()).add(a["participant"])
            self.history.setdefault(a["participant"], []).append((a["phase"], key, a.get("seq")))
            if isinstance(a.get("answer_id"), str):
                self.answer_ids[a["answer_id"]] = (a["participant"], a)
        self.participants: dict[str, Participant] = {}
        self.attention_items: dict[str, tuple] = {}
        self.rejections = Counter(_read_json(self.folder / "rejections.json"))

    # -- assignment --------------------------------------------------------------------------

    def _practice_items(self, rng) -> list[StudyItem]:
        chosen = []
        for kind in dict.fromkeys(it.kind for it in self.items):
            of_kind = [it for it in self.items if it.kind == kind]
            if len(of_kind) > self.settings.practice:  # never the whole of a kind
                chosen += [of_kind[i] for i in rng.choice(len(of_kind), self.settings.practice, replace=False)]
        return chosen

    def _plan(self, source: str) -> list[str]:
        """Practice first, then main items with attention checks among them (simulated participants
        get none: they cannot read an image they were not told about)."""
        plan = ["practice"] * len(self.practice)
        main = ["main"] * min(self.settings.per_person, len(self.main))
        checks = 0 if source == "simulated" else self.settings.attention
        for k in range(checks):  # spread evenly through the main items
            main.insert(round((k + 1) * len(main) / (checks + 1)) + k, "attention")
        return plan + main

    def _signature(self, source: str, nonce: str) -> str:
        return hmac.new(self.secret, f"participant:{source}:{nonce}".encode(), hashlib.sha256).hexdigest()[:16]

    def start(self, simulated: bool = False) -> Participant:
        """A new participant, with an id ("p-" + 16 random hex + 16 of signature) a restarted server
        recognises."""
        source, nonce = ("simulated" if simulated else "page"), secrets.token_hex(8)
        pid = f"p-{nonce}{self._signature(source, nonce)}"
        participant = Participant(pid, source, self._plan(source))
        self.participants[pid] = participant
        return participant

    def participant(self, pid) -> Participant:
        if isinstance(pid, str) and pid in self.participants:
            return self.participants[pid]
        restored = self._restore(pid)
        if restored is None:
            raise Rejected(404, "unknown participant", "this study does not know you: reload the page to start again")
        self.participants[pid] = restored
        return restored

    def _restore(self, pid) -> Participant | None:
        """A participant of this study met before a restart, rebuilt from their answers: what they
        saw, and the plan less what they answered (the item on their screen then is not kept)."""
        if not isinstance(pid, str) or not re.fullmatch(r"p-[0-9a-f]{32}", pid):
            return None
        nonce, signature = pid[2:18], pid[18:]
        for source in ("page", "simulated"):
            if hmac.compare_digest(signature, self._signature(source, nonce)):
                break
        else:
            return None
        history = self.history.get(pid, [])
        plan = self._plan(source)
        for phase, _, _ in history:
            if phase in plan:
                plan.remove(phase)
        seq = max((s for _, _, s in history if isinstance(s, int)), default=0)
        return Participant(pid, source, plan, seen={key for _, key, _ in history}, seq=seq)

    def next_item(self, pid) -> Served | None:
        """The item on this participant's screen (the same one again after a reload), the next one,
        or None when they are done."""
        p = self.participant(pid)
        now = time.monotonic()
        for token, (item, phase, _) in p.pending.items():
            return self._served(p, token, item, phase)
        while p.plan:
            phase = p.plan[0]
            item = self._choose(p, phase, now)
            if item is None:  # nothing left for this participant in this phase
                p.plan.pop(0)
                continue
            p.plan.pop(0)
            p.seq += 1
            token = hmac.new(
                self.secret, f"{p.id}:{p.seq}:{item.dataset}:{item.name}".encode(), hashlib.sha256
            ).hexdigest()[:32]
            p.pending[token] = (item, phase, now)
            p.seen.add(item.key)
            return self._served(p, token, item, phase)
        return None

    def _choose(self, p: Participant, phase: str, now: float) -> StudyItem | None:
        if phase == "practice":
            left = [it for it in self.practice if it.key not in p.seen]
            return left[0] if left else None
        if phase == "attention":
            return self._attention_item(p.seq)
        held = self._held(now)
        k = self.settings.answers_per_item
        per_design = Counter()
        for it in self.main:
            per_design[self.design_of[it.key]] += self.answered[it.key] + held[it.key]
        best, best_load = [], None
        for it in self.main:
            item_load = self.answered[it.key] + held[it.key]
            if item_load >= k or it.key in p.seen or p.id in self.people.get(it.key, ()):
                continue
            # the least answered items first, and among those the least answered design's
            load = (item_load, per_design[self.design_of[it.key]])
            if best_load is None or load < best_load:
                best, best_load = [it], load
            elif load == best_load:
                best.append(it)
        return best[int(self.rng.integers(len(best)))] if best else None

    def _held(self, now: float) -> Counter:
        held = Counter()
        for p in self.participants.values():
            for item, phase, served in p.pending.values():
                if phase == "main" and now - served < self.settings.hold:
                    held[item.key] += 1
        return held

    def _attention_item(self, index: int) -> StudyItem:
        spec = GenerationSpec("clean", 1, 3, 3, seed=int(self.rng.integers(2**31)), strength=0.0)
        drawn = render_one(spec, spec.check(), index)
        item = StudyItem(
            "attention",
            f"check-{spec.seed}-{index}",
            "text",
            None,
            drawn.label,
            design("clean", {}, 0.0, 0.0, "text"),
            index,
        )
        self.attention_items[item.name] = drawn.image
        return item

    def _served(self, p: Participant, token: str, item: StudyItem, phase: str) -> Served:
        position = p.seq
        total = p.seq + len(p.plan)
        if phase == "attention":
            return Served(token, item, phase, self.attention_items[item.name], {}, position, total)
        sample = self.sources[item.dataset].sample(item.index)
        if sample.image is None:  # unreadable: counted, skipped, and the next one served
            p.pending.pop(token)
            self.rejections["unreadable image"] += 1
            return self.next_item(p.id)
        shown = {name: sample.parts[name] for name, _ in get_kind(item.kind).question_parts}
        return Served(token, item, phase, sample.image, shown, position, total)

    # -- answers -----------------------------------------------------------------------------

    def answer(self, pid, token, answer, ms=None, pointer="", trajectory=None, replays=None, answer_id=None) -> dict:
        """Record one answer; returns the record. Rejected says why an answer is refused. An answer
        whose `answer_id` was recorded already (sent again after its reply was lost) returns that
        record, marked "repeated", and writes nothing."""
        p = self.participant(pid)
        if answer_id is not None and not (isinstance(answer_id, str) and ANSWER_ID.fullmatch(answer_id)):
            raise Rejected(400, "malformed request", "an answer id is 8-64 letters, digits, - or _")
        if answer_id in self.answer_ids:
            owner, record = self.answer_ids[answer_id]
            if owner != p.id:
                raise Rejected(409, "replayed answer", "this answer id belongs to another answer")
            return {**record, "repeated": True}
        if not isinstance(token, str) or token not in p.pending:
            if isinstance(token, str) and token in p.answered:
                raise Rejected(409, "replayed answer", "this item was already answered")
            raise Rejected(404, "unknown item", "this item was not served to you")
        item, phase, served = p.pending[token]
        text = normalise_answer(item, answer)
        record = {
            "format": FORMAT,
            "participant": p.id,
            "source": p.source,
            "phase": phase,
            "seq": p.seq,
            "dataset": item.dataset,
            "item": item.name,
            "kind": item.kind,
            "design": item.design,
            "design_key": design_key(item.design),
            "answer": text,
            "truth": item.truth,
            "correct": self.correct(item, text),
            "ms": clean_ms(ms),
            "server_ms": round((time.monotonic() - served) * 1000),
            "pointer": pointer if pointer in POINTERS else "",
            "trajectory": trajectory_of(trajectory) if get_kind(item.kind).trajectory else None,
            "replays": replays_of(replays) if get_kind(item.kind).replays else None,
            "answer_id": answer_id,
        }
        try:
            self.log.append(record)  # durable before the participant moves on
        except OSError as exc:  # a full disk: nothing counted, the page sends the answer again
            why = exc.strerror or type(exc).__name__
            raise Rejected(503, "not saved", f"your answer could not be saved ({why}): it is sent again") from None
        if answer_id is not None:
            self.answer_ids[answer_id] = (p.id, record)
        self.history.setdefault(p.id, []).append((phase, item.key, p.seq))
        del p.pending[token]
        p.answered.add(token)
        if phase == "main":
            self.answered[item.key] += 1
        self.people.setdefault(item.key, set()).add(p.id)
        return record

    def correct(self, item: StudyItem, text: str) -> bool:
        return get_kind(item.kind).correct(item.truth, text, self.settings.ignore_case)

    def reject(self, reason: str) -> None:
        self.rejections[reason] += 1
        try:
            atomic_write_json(self.folder / "rejections.json", dict(self.rejections))
        except CaptchalabError:  # no room for the count now: kept in memory, written with the next one
            pass

    def progress(self) -> dict:
        done = sum(min(n, self.settings.answers_per_item) for n in self.answered.values())
        return {
            "items": len(self.main),
            "answers_per_item": self.settings.answers_per_item,
            "main_answers": sum(self.answered.values()),
            "complete": done / (len(self.main) * self.settings.answers_per_item) if self.main else 1.0,
            "participants_this_run": len(self.participants),
            "rejected": dict(self.rejections),
        }


def _read_json(path: Path) -> dict:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in value.items() if isinstance(v, int)} if isinstance(value, dict) else {}


# -- the study folder ------------------------------------------------------------------------


def open_study(folder: Path, datasets: list[Path] | None = None, settings: StudySettings | None = None) -> HumanStudy:
    """Create a study folder for `datasets` with `settings`, or open an existing one as it was made
    (then `datasets`, if given, must be the ones it was made with, and `settings` are ignored: a
    study keeps its rules)."""
    folder = Path(folder)
    path = folder / STUDY_FILE
    if path.is_file():
        try:
            stored = json.loads(path.read_text())
            known = [Path(p) for p in stored["datasets"]]
            secret = bytes.fromhex(stored["secret"])
            kept = StudySettings(**stored["settings"])
        except (OSError, ValueError, KeyError, TypeError):
            raise CaptchalabError(f"{path} is not a human study file") from None
        if datasets and sorted(str(Path(d).resolve()) for d in datasets) != sorted(map(str, known)):
            raise CaptchalabError(
                f"{folder} is a study of other datasets ({', '.join(map(str, known))}); "
                f"give another `out`, or no `datasets` to go on with it"
            )
        settings = kept
    else:
        if not datasets:
            raise CaptchalabError(f"{folder} holds no human study: give `datasets` to start one")
        if folder.exists() and any(folder.iterdir()):
            raise CaptchalabError(f"{folder} exists and is not a human study folder")
        known, secret = [Path(d).resolve() for d in datasets], secrets.token_bytes(32)
        settings = settings or StudySettings()
    settings.check()
    study = HumanStudy(folder, known, settings, secret)
    atomic_write_json(
        path,
        {
            "kind": "human-study",
            "format": FORMAT,
            "datasets": [str(d) for d in known],
            "settings": asdict(settings),
            "secret": secret.hex(),
            "items": len(study.main),
            "practice_items": len(study.practice),
        },
    )
    return study
