"""`detector`: a pretrained COCO object detector (NanoDet-m, captchalab.detector) reading image
grids off the shelf, as published attacks on reCAPTCHA do (Hossen et al. 2020: YOLOv3 on COCO).

The prompt is mapped to a COCO class (`captchalab.detector.coco`: case, underscores, plurals and
synonyms such as hydrant -> fire hydrant); a prompt no COCO class names is not guessed: the
challenge counts as read wrongly, and the report lists the prompts the attacker could not read.

- `read=tiles` (3x3 grids, where every tile is a picture of its own): each tile goes through the
  detector alone, framed by a grey border (`margin`: a detector trained on scenes scores an
  object that fills the whole frame lower); a tile is selected when the prompt's class scores at
  least `threshold` in it.
- `read=scene` (4x4 grids, one picture cut into squares): the whole challenge goes through the
  detector once; a square is selected when a box of the prompt's class (scoring at least
  `threshold`) covers at least `overlap` of it.
- `read=auto` (the default): tiles for 3x3 grids, the scene for 4x4, as deployed grids are drawn.

Its weights come from `captchalab fetch-weights` (once, at set-up); without them it says so in
one line.
"""

from __future__ import annotations

import numpy as np

from ..detector.coco import CLASSES, coco_class
from ..detector.nanodet import framed
from ..errors import CaptchalabError
from ..kinds import format_tiles
from .base import Attacker, Param, Reading, register_attacker
from .tile_inputs import cut

MODES = ("auto", "tiles", "scene")


@register_attacker
class Detector(Attacker):
    name = "detector"
    kind = "grid"
    trainable = False
    description = (
        "A pretrained COCO object detector (NanoDet-m) off the shelf: selects the tiles, or the 4x4 squares, "
        "where it finds the prompt's object (`captchalab fetch-weights` installs it)."
    )
    params = (
        Param("threshold", float, 0.3, 0.01, 0.99, "select where the prompt's class scores at least this"),
        Param("read", str, "auto", help="tiles (each tile alone), scene (the whole challenge) or auto "
              "(tiles for 3x3, the scene for 4x4)"),
        Param("overlap", float, 0.1, 0.01, 1.0, "with read=scene: the share of a square a box of the prompt's class "
              "must cover for the square to be selected"),
        Param("tile", int, 160, 32, 416, "side in pixels each tile is cut to before the detector stretches it"),
        Param("margin", float, 0.33, 0.0, 1.0, "with read=tiles: a grey border around each tile, as a share of its "
              "side, so its object fills the frame as objects do in the detector's training pictures"),
    )  # fmt: skip

    def prepare(self, image, question):
        if self.hparams["read"] not in MODES:
            raise CaptchalabError(f"detector: read must be one of {', '.join(MODES)}, got {self.hparams['read']!r}")
        grid = question["grid"]
        scene = self.hparams["read"] == "scene" or (self.hparams["read"] == "auto" and grid == 4)
        return {
            "grid": grid,
            "prompt": question["prompt"],
            "scene": image if scene else None,
            "tiles": None if scene else cut(image, grid, self.hparams["tile"]),
        }

    def _detector(self):
        """The network, once per process (never in worker processes)."""
        if getattr(self, "_net", None) is None:
            from ..detector.nanodet import NanoDet

            self._net = NanoDet()
        return self._net

    def tile_probabilities(self, prepared: dict, label: str) -> np.ndarray:
        """Per tile (or square) how surely it shows the prompt's class."""
        net, h = self._detector(), self.hparams
        if prepared["tiles"] is not None:
            index = CLASSES.index(label)
            return np.array([net.class_scores(framed(t, h["margin"]))[index] for t in prepared["tiles"]])
        scene, grid = prepared["scene"], prepared["grid"]
        height, width = scene.shape[:2]
        cover = np.zeros(grid * grid)
        for found in net.detect(scene, h["threshold"]):
            if found.label != label:
                continue
            x0, y0, x1, y1 = found.box
            for k in range(grid * grid):
                r, c = divmod(k, grid)
                sx0, sy0, sx1, sy1 = (
                    c * width / grid,
                    r * height / grid,
                    (c + 1) * width / grid,
                    (r + 1) * height / grid,
                )
                inter = max(0.0, min(x1, sx1) - max(x0, sx0)) * max(0.0, min(y1, sy1) - max(y0, sy0))
                share = inter / ((sx1 - sx0) * (sy1 - sy0))
                if share >= h["overlap"]:
                    cover[k] = max(cover[k], found.score)
        return cover

    def read_prepared(self, batch):
        readings = []
        for prepared in batch:
            label = coco_class(prepared["prompt"])
            if label is None:  # no COCO class names it: never guessed
                readings.append(Reading("", [], details={"tile_probabilities": None, "unknown_prompt": True}))
                continue
            p = self.tile_probabilities(prepared, label)
            chosen = [k for k, v in enumerate(p) if v >= self.hparams["threshold"]]
            readings.append(
                Reading(
                    format_tiles(chosen),
                    [float(p[k]) for k in chosen],
                    details={"tile_probabilities": [round(float(v), 4) for v in p], "coco_class": label},
                )
            )
        return readings
