"""What a participant's answer may be: the page's answer in its kind's labels, a plausible solve
time, a slider's drag; anything else is refused with a status and a reason (`Rejected`), which
the study counts."""

from __future__ import annotations

import math

from ..kinds import get_kind

MAX_TRAJECTORY = 2000
MAX_REPLAYS = 1000
MAX_MS = 3_600_000
POINTERS = ("mouse", "touch", "pen", "keyboard")


class Rejected(Exception):
    """A request the study refuses: `status` is the HTTP status the page gets, `reason` is counted."""

    def __init__(self, status: int, reason: str, message: str):
        super().__init__(message)
        self.status, self.reason = status, reason


def normalise_answer(item, answer) -> str:
    """The page's answer written as its kind's labels write it; Rejected (400) when it cannot be."""
    try:
        return get_kind(item.kind).page_answer(answer, item.question)
    except ValueError as exc:
        raise Rejected(400, "malformed answer", f"malformed answer: {exc}") from None


def clean_ms(ms) -> int | None:
    """A solve time in milliseconds, or None when it is not a plausible one."""
    if isinstance(ms, (int, float)) and not isinstance(ms, bool) and math.isfinite(ms) and 0 <= ms <= MAX_MS:
        return round(ms)
    return None


def replays_of(count) -> int | None:
    """How often an audio challenge was played again (0 to MAX_REPLAYS), or None when the page
    sent no plausible count (it is a measure, never a reason to refuse the answer)."""
    if isinstance(count, int) and not isinstance(count, bool) and 0 <= count <= MAX_REPLAYS:
        return count
    return None


def trajectory_of(points) -> list | None:
    """A slider's drag as [ms, x] pairs, rounded; Rejected (400) when it is anything else."""
    if points is None:
        return None
    if (
        not isinstance(points, list)
        or len(points) > MAX_TRAJECTORY
        or not all(
            isinstance(pt, list)
            and len(pt) == 2
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in pt)
            for pt in points
        )
    ):
        raise Rejected(
            400,
            "malformed answer",
            f"malformed answer: a trajectory is at most {MAX_TRAJECTORY} [ms, x] pairs of numbers",
        )
    return [[round(t), round(x, 1)] for t, x in points]
