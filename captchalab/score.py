"""Score an attack: per-character, per-CAPTCHA and segmentation results."""
from __future__ import annotations

import numpy as np

from .attack import Item


def box_hit(found, truth) -> bool:
    """A found box covers a true character when it overlaps more than half its width."""
    return min(found[2], truth[2]) - max(found[0], truth[0]) > 0.5 * (truth[2] - truth[0])


def score(items: list[Item]) -> dict:
    done = [it for it in items if not it.skipped]
    confusion = np.zeros((10, 10), np.int64)
    max_len = max((len(it.text) for it in done), default=0)
    pos_right, pos_total = np.zeros(max_len), np.zeros(max_len)
    chars_right = chars_total = captchas_right = segmented = 0
    boxes_scored = boxes_right = 0
    for it in done:
        ok_count = len(it.guess) == len(it.text) and len(it.crops) == len(it.text)
        segmented += ok_count
        captchas_right += it.guess == it.text
        for pos, truth in enumerate(it.text):
            right = pos < len(it.guess) and it.guess[pos] == truth and ok_count
            chars_right += right
            pos_right[pos] += right
            pos_total[pos] += 1
            if ok_count and truth.isdigit():
                confusion[int(truth), int(it.guess[pos])] += 1
        chars_total += len(it.text)
        if it.true_boxes is not None:
            boxes_scored += 1
            boxes_right += ok_count and all(box_hit(f, t) for f, t in zip(it.boxes, it.true_boxes))
    n = len(done)
    result = {
        "count": n,
        "skipped": len(items) - n,
        "skipped_files": [it.name for it in items if it.skipped],
        "char_accuracy": chars_right / chars_total if chars_total else 0.0,
        "captcha_accuracy": captchas_right / n if n else 0.0,
        "segmentation_rate": segmented / n if n else 0.0,
        "per_position_accuracy": [float(r / t) if t else None for r, t in zip(pos_right, pos_total)],
        "confusion_matrix": confusion.tolist(),
    }
    if boxes_scored:
        result["segmentation_box_rate"] = boxes_right / boxes_scored
    return result
