"""Break CAPTCHAs: prepare each image for an attacker, read them in batches, score the readings.

Rendering or decoding and the attacker's per-image work (`prepare`: segmenting, resizing) run in
worker processes while the main process reads the prepared batches with the attacker's model.
Several attackers and several sources (styles) give one result, side by side.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from .charset import charset_name
from .data.dataset import FolderSource, Source, file_hashes
from .errors import CaptchalabError
from .kinds import get_kind, parse_tiles, reads, unanswered
from .manifest import make_manifest
from .score import Tally, attacker_state
from .workers import ordered_map, pool

CHUNK = 128  # CAPTCHAs per worker task: large enough to amortise IPC, small enough to overlap
READ_BATCH = 256  # CAPTCHAs per read_prepared call (about 1,000 crops for `segment`)
LABEL_LENGTH = "label"  # the hint for training: each CAPTCHA's own label length, and the truth the attacker declares


@dataclass
class Item:
    """One CAPTCHA on its way through an attacker."""

    index: int
    name: str
    text: str
    prepared: Any = None  # the attacker's input (None: the image could not be used; True: read, and let go)
    true_boxes: list | None = None
    error: str | None = None
    reading: Any = None  # the attacker's Reading, once read
    question: Any = None  # what the challenge asks (kinds other than text)
    rounds: int | None = 0  # dynamic grids: reads it took to solve (None: failed; 0: not dynamic)
    details: dict | None = None  # what the style drew (grids: each tile's class), for the scorer

    @property
    def skipped(self) -> bool:
        return self.prepared is None


def hint_for(attacker, sample, length):
    """What `prepare` is told besides the image: the question, for a kind that asks one, with the
    images the page shows beside it (a slider's piece); else the expected length (LABEL_LENGTH:
    the label's own), if the attacker uses it. Training CAPTCHAs (LABEL_LENGTH) of a kind that asks
    a question also carry, as "truth", what the style drew that the attacker declares it learns
    from (`Attacker.truth`), where the dataset holds it; CAPTCHAs being attacked never do."""
    if sample.question is not None:
        shown = {
            part: sample.parts[part]
            for part, _ in get_kind(attacker.kind).question_parts
            if sample.parts and part in sample.parts
        }
        truth = {
            key: sample.details[key]
            for key in attacker.truth
            if length == LABEL_LENGTH and sample.details and key in sample.details
        }
        return {**sample.question, **shown, **({"truth": truth} if truth else {})}
    hint = len(sample.text) if length == LABEL_LENGTH else length
    return hint if attacker.uses_length else None


def _prepare_chunk(attacker, source: Source, indices: list[int], length) -> list[Item]:
    items = []
    for i in indices:
        sample = source.sample(i)
        item = Item(
            i,
            sample.name,
            sample.text,
            true_boxes=sample.boxes,
            error=sample.error,
            question=sample.question,
            details=sample.details,
        )
        if sample.image is not None:
            try:
                item.prepared = attacker.prepare(sample.image, hint_for(attacker, sample, length))
            except Exception as exc:  # an odd image must not stop the run: skip it and say why
                item.error = f"{attacker.name} could not prepare it ({type(exc).__name__}: {exc})"
        items.append(item)
    return items


def uses_pool(source: Source, workers: int) -> bool:
    """Worker processes pay off only with more than one chunk of work."""
    return workers >= 1 and len(source) > CHUNK


def prepare_source(attacker, source: Source, length, workers: int = 1) -> Iterator[list[Item]]:
    """Yield chunks of prepared CAPTCHAs in order, preparing in `workers` processes.

    `length` is the expected character count, None to let the attacker decide, or LABEL_LENGTH
    to use each CAPTCHA's label (fine for training, not for attacking).
    """
    n = len(source)
    chunks = [list(range(s, min(s + CHUNK, n))) for s in range(0, n, CHUNK)]
    if not uses_pool(source, workers):
        for c in chunks:
            yield _prepare_chunk(attacker, source, c, length)
        return
    dirs = tuple(source.plugin_dirs) + tuple(attacker.info.get("plugin_dirs", ()))
    calls = ((attacker, source.part(c), c, length) for c in chunks)
    yield from ordered_map(pool(workers, dirs), _prepare_chunk, calls, 4 * workers)


def read_items(attacker, items: list[Item]) -> None:
    ready = [it for it in items if not it.skipped]
    if ready:
        for it, reading in zip(ready, attacker.read_prepared([it.prepared for it in ready])):
            it.reading = reading


def read_source(
    attacker,
    source: Source,
    length: int | None = None,
    workers: int = 2,
    on_progress: Callable[[int], None] | None = None,
) -> Iterator[list[Item]]:
    """Prepare and read every CAPTCHA of `source`, yielding the read items chunk by chunk in order;
    their prepared inputs are let go once read, and the caller keeps what it needs of each chunk,
    so the attack's memory does not grow with the source. Call `warm_up` first."""
    pending: list[Item] = []
    for chunk in prepare_source(attacker, source, length, workers):
        pending.extend(chunk)
        if len(pending) >= READ_BATCH:
            yield _read_pending(attacker, pending, on_progress)
            pending = []
    if pending:
        yield _read_pending(attacker, pending, on_progress)


def _read_pending(attacker, pending: list[Item], on_progress) -> list[Item]:
    read_items(attacker, pending)
    for it in pending:
        if it.prepared is not None:
            it.prepared = True
    if on_progress:
        on_progress(len(pending))
    return pending


def warm_up(attacker, source: Source, length: int | None, workers: int) -> None:
    """Start the worker processes and read one challenge untimed (a model's first trace), so that
    an attack's time is the reading's alone."""
    if uses_pool(source, workers):
        pool(workers, tuple(source.plugin_dirs) + tuple(attacker.info.get("plugin_dirs", ())))
    warm = source.sample(0) if attacker.warm_up else None
    if warm is not None and warm.image is not None:
        read_items(attacker, [Item(0, "", "", attacker.prepare(warm.image, hint_for(attacker, warm, length)))])


def play_rounds(attacker, source: Source, items: list[Item]) -> None:
    """Dynamic grids (a queue of replacement tiles behind each position): the reader's selection
    is replaced tile by tile from the queues and it reads the new grid, round after round, until it
    selects nothing. It solves the challenge when it then selects nothing with no target left in
    view, having never selected a tile without the prompt's class. Sets each item's `rounds` (the
    reads it took, the final empty one included) or None (failed); static grids are left alone."""
    games = []
    for it in items:
        # only dynamic grids are drawn or read again (the item carries what the style drew)
        if it.skipped or it.reading is None or not (it.details or {}).get("queue"):
            continue
        sample = source.sample(it.index)
        queue = sample.details["queue"]
        if not sample.parts or "queue" not in sample.parts or sample.image is None:
            continue
        n = it.question["grid"]
        strip = sample.parts["queue"]
        side = strip.shape[0] // (n * n)
        gutter = (sample.image.shape[1] - n * side) // max(1, n - 1)
        targets = set(parse_tiles(it.text, n * n))
        games.append(
            {
                "item": it,
                "image": sample.image.copy(),
                "strip": strip,
                "side": side,
                "gutter": gutter,
                "queue": queue,
                "next": [0] * (n * n),
                "targets": targets,
                "reading": it.reading,
            }
        )
        it.rounds = None
    max_rounds = 1 + max((len(g["queue"][0]) for g in games), default=0)
    for round_number in range(1, max_rounds + 1):
        active = []
        for g in games:
            try:
                chosen = parse_tiles(g["reading"].text, g["item"].question["grid"] ** 2)
            except ValueError:
                chosen = frozenset()
            if unanswered(g["reading"]) or chosen - g["targets"] or (not chosen and g["targets"]):
                continue  # no answer, a wrong tile, or giving up with a target in view: failed
            if not chosen:
                g["item"].rounds = round_number
                continue
            n, side, gutter = g["item"].question["grid"], g["side"], g["gutter"]
            for k in sorted(chosen):  # each selected tile is replaced by the next in its queue
                depth = g["next"][k]
                g["next"][k] += 1
                row, col = divmod(k, n)
                y, x = row * (side + gutter), col * (side + gutter)
                if depth < len(g["queue"][k]):
                    g["image"][y : y + side, x : x + side] = g["strip"][
                        k * side : (k + 1) * side, depth * side : (depth + 1) * side
                    ]
                    shows = g["queue"][k][depth]["class"] == g["item"].question["prompt"]
                else:  # an exhausted queue leaves a blank tile
                    g["image"][y : y + side, x : x + side] = 255
                    shows = False
                g["targets"].discard(k)
                if shows:
                    g["targets"].add(k)
            active.append(g)
        if not active or round_number == max_rounds:
            break
        prepared = [attacker.prepare(g["image"], {**g["item"].question, "round": round_number + 1}) for g in active]
        for g, reading in zip(active, attacker.read_prepared(prepared)):
            g["reading"] = reading
        games = active


def choose_charsets(model_sets: list[str], charset: str | None) -> tuple[str | None, str | None]:
    """(what generated CAPTCHAs draw, what a dataset's rows are checked against): `charset` when
    given; else generated CAPTCHAs draw from the first model's set (None without models: a text
    style's default, digits; other kinds draw no characters) and a dataset's rows must be
    readable by every model (read-only attackers read any set: None)."""
    if charset:
        return charset, charset
    if not model_sets:
        return None, None
    return model_sets[0], "".join(c for c in model_sets[0] if all(c in s for s in model_sets))


def check_attackers(attackers: list, sources: dict[str, Source]) -> None:
    """Refuse a style whose characters an attacker's charset cannot express, a dataset whose
    images an attacker saw while training on unlabelled CAPTCHAs, and challenges showing pictures
    it fitted on (other than its own pool, tested on purpose)."""
    hashes = {}
    for attacker in attackers:
        seen = set((attacker.info.get("unlabelled") or {}).get("image_sha256") or ())
        for name, source in sources.items():
            if not reads(attacker.kind, source.kind):
                raise CaptchalabError(
                    f"{attacker.label()} reads {attacker.kind} CAPTCHAs; "
                    f"{name or 'the dataset'} holds {source.kind} CAPTCHAs"
                )
            source.check_charset(attacker.charset, f"{attacker.label()}")
            if seen and isinstance(source, FolderSource):
                if name not in hashes:
                    hashes[name] = file_hashes(source.dataset)
                shared = len(hashes[name] & seen)
                if shared:  # it trained on these very images, unlabelled: its score would flatter it
                    raise CaptchalabError(
                        f"{attacker.label()} trained on {shared} of these images (unlabelled, "
                        f"from {attacker.info['unlabelled'].get('folder')}): attack other CAPTCHAs"
                    )
            _check_pictures(attacker, name, source)


def _check_pictures(attacker, name: str, source: Source) -> None:
    """Refuse challenges that show pictures the attacker fitted on, unless the design serves the
    very pool it trained on (a site's fixed pool is a design a designer may test on purpose)."""
    trained = attacker.info.get("pictures") or {}
    if not trained.get("sha256"):
        return
    pool, shown = source.pictures()
    shared = len(shown & set(trained["sha256"]))
    if shared and pool != trained.get("pool"):
        raise CaptchalabError(
            f"{attacker.label()} trained on {shared} of the pictures {name or 'these challenges'} show "
            "(the same picture in its training and these test pictures): hold them out (`pool`), or test "
            "the very pool it trained on (the same tiles and `pool`) to measure a fixed pool"
        )


SAME_POOL, NEW_PICTURES = "same pool", "new pictures"


def pool_counterpart(attackers: list, source: Source) -> tuple[str, str, Source | None] | None:
    """For a source drawn from a pool of pictures and the first attacker that records the pool it
    fitted on: what the source is to that attacker (SAME_POOL: that very pool, a site serving a
    fixed pool; NEW_PICTURES: none of the pictures it fitted on), what the other is, and the same
    design drawn from the other (the attacker's own pool, or the pictures that pool held out;
    None where it cannot be drawn). None when no such attacker or pool applies, or the source
    mixes pools (`check_attackers` says why)."""
    trained = next((a.info["pictures"] for a in attackers if (a.info.get("pictures") or {}).get("pool")), None)
    pool, shown = source.pictures()
    if trained is None or not pool:
        return None
    same = pool == trained["pool"]
    if not same and shown & set(trained["sha256"]):
        return None
    if same:
        other = source.from_pool({**pool, "pool": "test"}) if pool.get("pool") == "train" else None
        return SAME_POOL, NEW_PICTURES, other
    return NEW_PICTURES, SAME_POOL, source.from_pool(trained["pool"])


def both_pools(attackers: list, sources: dict[str, Source]) -> dict[str, Source]:
    """Both numbers a designer of a picture-pool design needs, side by side: each source drawn
    from a pool of pictures (`pool_counterpart`) as "NAME (same pool)" or "NAME (new pictures)",
    with the same design drawn from the other pool beside it where it can be drawn; other
    sources as they are."""
    out = {}
    for name, source in sources.items():
        found = pool_counterpart(attackers, source)
        if found is None:
            out[name] = source
            continue
        asked, other, counterpart = found
        out[f"{name} ({asked})"] = source
        if counterpart is not None:
            out[f"{name} ({other})"] = counterpart
    return out


def attack_many(
    attackers: list,
    sources: dict[str, Source],
    expect: int | None = None,
    workers: int = 2,
    ignore_case: bool = False,
    on_progress: Callable[[int], None] | None = None,
    example_limit: int = 8,
) -> tuple[dict, dict[str, list]]:
    """Attack every source with every attacker.

    Returns the result (the first attacker's scores at the top, every attacker under
    `per_attacker`, `per_style` when there are several sources) and, per
    attacker, up to `example_limit` misread items with their images for the report.
    """
    if expect is not None and not 1 <= expect <= 8:
        raise CaptchalabError(f"`expect` must be between 1 and 8, got {expect}")
    if not attackers:
        raise CaptchalabError("no attacker given")
    kind = next(iter(sources.values())).kind
    attackers = [a.for_kind(kind) for a in attackers]
    check_attackers(attackers, sources)
    charsets = "".join(dict.fromkeys("".join(s.charset for s in sources.values())))
    per_attacker, examples, described = {}, {}, {}
    for attacker in attackers:
        label = _unique_label(attacker, per_attacker)
        overall = Tally(charsets, ignore_case, kind)
        per_style, seconds, misread, failures = {}, 0.0, [], Counter()
        for name, source in sources.items():
            length = expect if expect is not None else source.fixed_length()
            # a source's own score only beside others: one source's is the attacker's overall
            style = Tally(source.charset, ignore_case, source.kind) if len(sources) > 1 else None
            warm_up(attacker, source, length, workers)
            start, counting = time.perf_counter(), 0.0
            for chunk in read_source(attacker, source, length, workers, on_progress):
                play_rounds(attacker, source, chunk)  # dynamic grids only: nothing else has a queue
                counted = time.perf_counter()
                overall.add(chunk)
                if style is not None:
                    style.add(chunk)
                for it in chunk:
                    if unanswered(it.reading):  # an outside service down, refusing, answering garbage
                        failures[it.reading.details["failure"]] += 1
                    if len(misread) < example_limit and not it.skipped and failed(it, source.kind, ignore_case):
                        misread.append((source.sample(it.index).image, it))
                counting += time.perf_counter() - counted
            took = time.perf_counter() - start - counting  # the reading's time, not the counting's
            seconds += took
            described[name] = {**source.describe(), "expected_length": length}
            if style is not None:
                per_style[name] = {
                    **style.result(),
                    "captchas_per_second": round(style.read_or_skipped / took, 1) if took else None,
                }
        result = overall.result()
        if not result["count"]:  # nothing was measured: a 0% would be a number about nothing
            first = overall.skipped[0] if overall.skipped else None
            raise CaptchalabError(
                f"{label} read nothing: all {result['skipped']} CAPTCHAs were unusable"
                + (f" (first: {first[0]}: {first[1] or 'unreadable'})" if first else "")
            )
        result.update(
            attacker=attacker.name,
            charset=charset_name(attacker.charset),
            state=attacker_state(attacker),
            model=attacker.info.get("path"),
            seconds=round(seconds, 3),
            captchas_per_second=round(overall.read_or_skipped / seconds, 1) if seconds > 0 else None,
            length_hint=expect if expect is not None else {n: s.fixed_length() for n, s in sources.items()},
            **attacker.report_fields(),
        )
        if failures:  # answers it could not give
            result["failures"] = dict(failures.most_common())
        if per_style:
            result["per_style"] = per_style
        per_attacker[label] = result
        examples[label] = misread
    return _attack_report(per_attacker, sources, described, workers, ignore_case), examples


def _unique_label(attacker, taken: dict) -> str:
    label = attacker.label()
    if label in taken:  # two of one name: their settings tell them apart
        label = attacker.label(detailed=True)
    if label in taken:
        raise CaptchalabError(f"attacker {label} is given twice")
    return label


def _attack_report(
    per_attacker: dict, sources: dict[str, Source], described: dict, workers: int, ignore_case: bool
) -> dict:
    """The attack result: the first attacker's numbers at the top (scripts read them), every
    attacker's under `per_attacker`, the sources and the manifest."""
    first = next(iter(per_attacker.values()))
    kind = next(iter(sources.values())).kind
    report = {
        **first,
        "attackers": list(per_attacker),
        "char_accuracy_definition": get_kind(kind).unit_definition,
        "top_level": "the first attacker's numbers; every attacker's are under per_attacker",
        "per_attacker": per_attacker,
    }
    if len(sources) > 1:
        report["sources"] = described
    else:
        report["source"] = described[next(iter(sources))]
        only = next(iter(sources.values()))
        if isinstance(only, FolderSource):
            report["rejected_rows"] = only.rejected
    report["manifest"] = make_manifest(
        "report",
        command="attack",
        sources=described,
        workers=workers,
        attackers={label: {"attacker": r["attacker"], "model": r["model"]} for label, r in per_attacker.items()},
        ignore_case=ignore_case,
    )
    return report


def failed(item: Item, kind: str, ignore_case: bool = False) -> bool:
    """Whether a read challenge failed by its kind's rule (a slider within its tolerance, an
    expression of the right value, passes), unanswered, or a dynamic grid not solved in its rounds."""
    if item.rounds != 0:
        return item.rounds is None
    return unanswered(item.reading) or not get_kind(kind).correct(item.text, item.reading.text, ignore_case)


def attack_source(
    attacker, source: Source, expect: int | None = None, workers: int = 2, on_progress=None, example_limit: int = 8
) -> tuple[dict, list]:
    """One attacker on one source: the result and its misread examples."""
    report, examples = attack_many(
        [attacker], {"": source}, expect, workers, on_progress=on_progress, example_limit=example_limit
    )
    return report, next(iter(examples.values()))
