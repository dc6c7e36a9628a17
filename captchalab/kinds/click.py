"""Click-in-order CAPTCHAs ("click the icons in this order"): a scene holds the targets among
decoys; the strip beside it (the part `strip`, NAME.strip.png, handed to attackers as
`question["strip"]`) shows the targets in the order to click them, drawn differently from the
scene; a text design also names them in words.

- question: `{"prompt": the words the page shows, one character a target ("" when it shows
  pictures only), "count": how many targets, "size": [width, height] of the scene}`.
- answer (the truth, labels.csv's `boxes`): each target's box in click order, `x0 y0 x1 y1`
  (pixels of the scene, x1 and y1 inclusive), separated by `;`.
- a reading (an attacker's or a person's answer): the clicks in order, `x y`, separated by `;`.

A click counts when it falls inside its target's box, edges included; success is every target
clicked, in order, in one attempt: as many clicks as targets, the k-th inside the k-th box.
labels.csv: `filename,size,prompt,boxes`, the size written `320x200`. A click outside the scene
is refused in a person's answer (page or imported file) and a miss in an attacker's.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from .base import LOWER_BOUND_NOTE, Kind, interval, number, pct, plain_reply, trained, unanswered

MAX_TARGETS = 9  # targets a challenge may ask for (a page's strip holds a handful)
MAX_CLICK = 100_000  # a coordinate further out than this is no click on any page


def parse_boxes(text: str) -> list[tuple[int, int, int, int]]:
    """The truth: `x0 y0 x1 y1;...` -> boxes; ValueError says why not."""
    boxes = []
    for part in text.split(";"):
        values = part.split()
        if len(values) != 4 or not all(v.isdigit() for v in values):
            raise ValueError(f"box {part.strip()!r} is not four whole numbers x0 y0 x1 y1")
        x0, y0, x1, y1 = map(int, values)
        if x1 < x0 or y1 < y0:
            raise ValueError(f"box {part.strip()!r} ends before it starts")
        boxes.append((x0, y0, x1, y1))
    if not 1 <= len(boxes) <= MAX_TARGETS:
        raise ValueError(f"{len(boxes)} boxes: a click challenge has 1 to {MAX_TARGETS} targets")
    return boxes


def format_boxes(boxes) -> str:
    return ";".join(" ".join(str(int(v)) for v in box) for box in boxes)


def parse_clicks(text: str) -> list[tuple[float, float]] | None:
    """An answer: `x y;x y;...` -> points (None when it is not one: a misread, never an error)."""
    text = text.strip()
    if not text:
        return []
    points = []
    for part in text.split(";"):
        values = part.replace(",", " ").split()
        if len(values) != 2:
            return None
        try:
            x, y = float(values[0]), float(values[1])
        except ValueError:
            return None
        if not (math.isfinite(x) and math.isfinite(y)) or max(abs(x), abs(y)) > MAX_CLICK:
            return None
        points.append((x, y))
    return points


def format_clicks(points) -> str:
    return ";".join(f"{round(x)} {round(y)}" for x, y in points)


def inside(point, box) -> bool:
    x, y = point
    return box[0] <= x <= box[2] and box[1] <= y <= box[3]


def centre(box) -> tuple[float, float]:
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2


def judge_clicks(boxes, clicks) -> dict:
    """One challenge's clicks against its boxes: per target hit (the k-th click in the k-th box),
    order errors (a click in another target's box), misses (in no target's box), distances from
    each click to its target's centre, and success."""
    hits = [k < len(clicks) and inside(clicks[k], box) for k, box in enumerate(boxes)]
    order = sum(
        1
        for k, p in enumerate(clicks)
        if not (k < len(boxes) and inside(p, boxes[k])) and any(inside(p, b) for b in boxes)
    )
    missed = sum(1 for p in clicks if not any(inside(p, b) for b in boxes))
    distances = [math.dist(p, centre(b)) for p, b in zip(clicks, boxes)]
    return {
        "hits": hits,
        "order_errors": order,
        "misses": missed,
        "distances": distances,
        "success": len(clicks) == len(boxes) and all(hits),
    }


class ClickKind(Kind):
    """ "Click the targets in this order": see the module's docstring for the question, answer and
    reading formats and the scoring rule."""

    name, columns, unit, default_attacker, example_style = (
        "click",
        ("size", "prompt", "boxes"),
        "target",
        "clicknet",
        "iconclick",
    )
    unit_definition = "target hit rate = targets whose click (the k-th for the k-th target) fell inside its box"
    question_parts = (("strip", False),)
    widget, view = "click", "challenge"
    asks = "Click the pictures in the order the strip shows them, then press Verify."
    page_question = ("prompt", "count", "size")
    per_style_columns = (("captcha_accuracy", "success"), ("char_accuracy", "target hits"))

    def row(self, question, answer):
        width, height = question["size"]
        return [f"{width}x{height}", question["prompt"], answer]

    def parse_row(self, cells):
        size = cells["size"].strip().lower().split("x")
        if len(size) != 2 or not all(v.isdigit() and 0 < int(v) <= MAX_CLICK for v in size):
            raise ValueError(f"size {cells['size']!r} is not WIDTHxHEIGHT in pixels")
        width, height = map(int, size)
        prompt = cells["prompt"].strip()
        boxes = parse_boxes(cells["boxes"])
        if prompt and len(prompt) != len(boxes):
            raise ValueError(f"prompt {prompt!r} names {len(prompt)} targets; {len(boxes)} boxes are given")
        if any(b[2] >= width or b[3] >= height for b in boxes):
            raise ValueError(f"a box lies outside the {width}x{height} scene")
        return {"prompt": prompt, "count": len(boxes), "size": [width, height]}, format_boxes(boxes)

    def units(self, answer):
        return answer.count(";") + 1

    def check_challenge(self, challenge, image):
        problems = []
        strip = (challenge.parts or {}).get("strip")
        if strip is None or np.asarray(strip).ndim != 3:
            problems.append("a click challenge must carry its prompt strip (an image) in parts['strip']")
        try:
            boxes = parse_boxes(challenge.answer)
        except ValueError:
            return problems  # (reported with the labels row)
        height, width = image.shape[:2]
        if any(b[2] >= width or b[3] >= height for b in boxes):
            problems.append(f"a target's box lies outside the {width}x{height} scene")
        if list(challenge.question.get("size") or ()) != [width, height]:
            problems.append(f"question['size'] must be the scene's [width, height], [{width}, {height}]")
        return problems

    def correct(self, truth, guess, ignore_case=False):
        clicks = parse_clicks(guess)
        return clicks is not None and judge_clicks(parse_boxes(truth), clicks)["success"]

    def score(self, items):
        n = len(items)
        success = targets = hit = order = missed = too_few = too_many = unparsable = 0
        distances = []
        for it in items:
            boxes = parse_boxes(it.text)
            targets += len(boxes)
            clicks = None if unanswered(it.reading) else parse_clicks(it.reading.text)
            if clicks is None:
                unparsable += 1
                continue
            judged = judge_clicks(boxes, clicks)
            success += judged["success"]
            hit += sum(judged["hits"])
            order += judged["order_errors"]
            missed += judged["misses"]
            too_few += len(clicks) < len(boxes)
            too_many += len(clicks) > len(boxes)
            distances += judged["distances"]
        return {
            "success": success,
            "unit_accuracy": hit / targets if targets else 0.0,
            "fields": {
                "targets": targets,
                "target_hit_rate": hit / targets if targets else 0.0,
                "order_errors": order,
                "misses": missed,
                "too_few_clicks": too_few,
                "too_many_clicks": too_many,
                "unparsable": unparsable,
                "mean_distance_px": float(np.mean(distances)) if distances else None,
                "challenges": n,
            },
        }

    def report_table(self, result):
        lines = [
            "",
            "| attacker | success (all in order) | 95% interval | target hits | order errors | misses | "
            "too few / many clicks | mean distance (px) | challenges/s | read | skipped | training |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for name, r in result["per_attacker"].items():
            distance = r.get("mean_distance_px")
            lines.append(
                f"| {name} | {pct(r['captcha_accuracy'])} | {interval(r.get('captcha_accuracy_ci95'))} | "
                f"{pct(r.get('target_hit_rate'))} | {r.get('order_errors', '-')} | {r.get('misses', '-')} | "
                f"{r.get('too_few_clicks', '-')} / {r.get('too_many_clicks', '-')} | "
                f"{'-' if distance is None else f'{distance:.1f}'} | {r.get('captchas_per_second') or '-'} | "
                f"{r['count']} | {r['skipped']} | {trained(r.get('state'))} |"
            )
        return lines + [
            "",
            "Success is single-attempt: as many clicks as targets, the k-th inside the k-th target's box "
            "(edges included). Target hits: targets whose own click fell in their box. An order error is a "
            "click inside another target's box; a miss, a click inside none. The mean distance is from "
            "each click to its target's centre.",
            "",
            LOWER_BOUND_NOTE,
        ]

    def summary(self, r):
        rate = r.get("target_hit_rate")
        return f", target hits {rate:.1%}" if rate is not None else ""

    def describe_reading(self, found, truth):
        clicks = parse_clicks(found)
        said = f"clicks {format_clicks(clicks)}" if clicks else "no clicks"
        return said + (f" (targets {truth})" if truth is not None else "")

    def caption(self, item):
        return f"{len(parse_boxes(item.text))} targets -> {item.reading.text or '?'}"

    def seen(self, image, item):
        """The misread challenge with the targets' boxes, the clicks, and the boxes the attacker
        found (thin, orange: a detector's `found_boxes` in its reading's details)."""
        out = image.copy()
        for box in (getattr(item.reading, "details", None) or {}).get("found_boxes") or []:
            cv2.rectangle(out, tuple(int(v) for v in box[:2]), tuple(int(v) for v in box[2:4]), (0, 140, 255), 1)
        return self.drawn(out, item.text, item.reading.text)

    def drawn(self, image: np.ndarray, truth: str | None, found: str) -> np.ndarray:
        """The scene with the targets' boxes (green, numbered in order) and the clicks (red, numbered)."""
        out = image.copy()
        if truth:
            for k, box in enumerate(parse_boxes(truth)):
                cv2.rectangle(out, box[:2], box[2:], (44, 160, 44), 1)
                cv2.putText(out, str(k + 1), (box[0] + 2, box[1] + 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (44, 160, 44), 1)
        for k, (x, y) in enumerate(parse_clicks(found) or []):
            point = (int(round(x)), int(round(y)))
            cv2.drawMarker(out, point, (40, 40, 214), cv2.MARKER_CROSS, 10, 2)
            cv2.putText(out, str(k + 1), (point[0] + 4, point[1] - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (40, 40, 214), 1)
        return out

    def explore_images(self, image, question, parts, found, truth):
        """The clicks on the scene, numbered (and the targets' boxes when the truth is known)."""
        return [("the clicks in order", self.drawn(image, truth, found))] + super().explore_images(
            image, question, parts, found, truth
        )

    def solver_prompt(self, question, charset, length):
        words = f" (they are: {' '.join(question['prompt'])})" if question.get("prompt") else ""
        return (
            f"The first picture is a scene; the second is a strip showing {question['count']} targets{words} "
            "in the order to click them. Reply with the pixel coordinates in the scene of each target's "
            'centre, in that order, as "x y" pairs separated by semicolons, e.g. "40 62;118 30". '
            "Reply with the coordinates alone."
        )

    def solver_answer(self, reply, question, charset):
        return self.typed_answer(plain_reply(reply), question)

    def page_answer(self, answer, question):
        """The page sends its clicks as [[x, y], ...], in order, in the scene's pixels."""
        if not isinstance(answer, list) or len(answer) > 2 * MAX_TARGETS:
            raise ValueError(f"clicks are a list of at most {2 * MAX_TARGETS} [x, y] points")
        points = []
        for point in answer:
            if not isinstance(point, list) or len(point) != 2:
                raise ValueError("each click is [x, y]")
            x, y = number(point[0]), number(point[1])
            if x is None or y is None:
                raise ValueError("a click's x and y are numbers")
            points.append((x, y))
        return self._within(points, question)

    def typed_answer(self, text, question):
        clicks = parse_clicks(text)
        if clicks is None or len(clicks) > 2 * MAX_TARGETS:
            raise ValueError('clicks are "x y" pairs separated by semicolons')
        return self._within(clicks, question)

    def _within(self, points, question) -> str:
        width, height = (question or {}).get("size") or (MAX_CLICK, MAX_CLICK)
        for x, y in points:
            if not (0 <= x < width and 0 <= y < height):
                raise ValueError(f"the click ({x:g}, {y:g}) lies outside the {width}x{height} scene")
        return format_clicks(points)

    def page_value(self, truth, question):
        return [[round(c) for c in centre(b)] for b in parse_boxes(truth)]

    def wrong_value(self, truth, question, charset, rng):
        points = self.page_value(truth, question)
        if len(points) > 1 and rng.random() < 0.5:  # the right places in the wrong order
            points[0], points[1] = points[1], points[0]
            return points
        points[-1] = [points[-1][0] + int(rng.integers(40, 80)), points[-1][1]]  # a slip past the last
        return points
