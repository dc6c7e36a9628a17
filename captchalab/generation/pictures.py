"""Picture pools for styles that draw from a folder of labelled pictures (`tiles=DIR`): the
parameters that choose the pool a design serves, and what such a style's `pictures` returns.

A style that adds `POOL_PARAMS` to its own, declares `picture_parts = True`, reads its pictures
with `pool_tiles(params)` and returns `pool_pictures(params)` from `pictures` gets the whole
picture-pool house: validation by picture in `train captcha`, the overlap check in `attack`, and
"same pool" beside "new pictures" in attack reports (docs/plugins.md).
"""

from __future__ import annotations

from pathlib import Path

from ..data.tiles import TileSet, chosen_tiles
from .generator import Param

# the built-in art's look-alike classes (art/README.md): the decoys a design can set beside a target
LOOK_ALIKES = {
    "biscuit": "doughnut",
    "doughnut": "biscuit",
    "bus": "truck",
    "truck": "bus",
    "car": "taxi",
    "taxi": "car",
    "cat": "dog",
    "dog": "cat",
    "bicycle": "motorcycle",
    "motorcycle": "bicycle",
    "tree": "palm tree",
    "palm tree": "tree",
}

POOL_PARAMS = (
    Param(
        "pool",
        str,
        "all",
        help="which pictures the design serves: all, train (those not held out) or test "
        "(the held_out share, split by picture content: new pictures to an attacker trained on train)",
    ),
    Param("held_out", float, 0.3, 0.05, 0.95, "the share of each class's pictures held out as the test pool"),
    Param("pool_size", int, 0, 0, 100000, "serve each class from its first N pictures of the pool (0: all of them)"),
    Param(
        "part",
        str,
        "all",
        help="all, fit or validation: the trainer draws its validation challenges from "
        "pictures it does not fit on (set by `train captcha`; all for a design)",
    ),
)


def pool_tiles(p: dict) -> TileSet:
    """The pictures the parameters serve: `tiles` (a folder) or `art` (the built-in art), then the
    pool, part and size `POOL_PARAMS` choose."""
    return chosen_tiles(p["tiles"], p["art"], p["pool"], p["part"], p["held_out"], p["pool_size"])


def pool_pictures(p: dict) -> tuple[dict, list[str]]:
    """A style's `pictures(params)`: the parameters naming the pool served (`part` aside, the
    folder resolved) and its pictures' content hashes; ({}, []) for the built-in art, whose few
    drawings a class are what the design serves."""
    if not p["tiles"]:
        return {}, []
    pool = {"tiles": str(Path(p["tiles"]).resolve()), "pool": p["pool"], "held_out": p["held_out"]}
    return {**pool, "pool_size": p["pool_size"]}, pool_tiles(p).digests()
