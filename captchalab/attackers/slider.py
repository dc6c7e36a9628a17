"""Readers of slider CAPTCHAs (kind "slider"): where is the gap the piece fits?

- `template`: the classic OpenCV solver off-the-shelf tools use: the piece's outline (from its
  transparency) matched against the background's edges along the piece's row.
"""
from __future__ import annotations

import cv2
import numpy as np

from .base import Attacker, Param, Reading, register_attacker


@register_attacker
class Template(Attacker):
    name = "template"
    kind = "slider"
    trainable = False
    description = ("OpenCV: the piece's outline matched against the background's edges along its row, as "
                   "off-the-shelf slider solvers do.")
    # defaults chosen on 200 generated sliders at strength 0.5 (seed 2): Canny 50/150 on a 3x3 blur
    # found 90.5% within 5 px, 20/60 on a 5x5 blur with both edge maps thickened by 3 px 99.5%
    params = (
        Param("band", int, 2, 0, 40, "rows searched above and below the piece's served height"),
        Param("blur", int, 5, 1, 15, "Gaussian blur before edge detection (odd kernel side in pixels)"),
        Param("low", int, 20, 1, 500, "Canny's lower threshold on the background"),
        Param("high", int, 60, 1, 1000, "Canny's upper threshold on the background"),
        Param("dilate", int, 3, 0, 9, "thicken both edge maps by this many pixels (tolerates blur and rotation)"),
    )

    def prepare(self, image, question):
        h = self.hparams
        grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        side = h["blur"] | 1
        edges = cv2.Canny(cv2.GaussianBlur(grey, (side, side), 0), h["low"], h["high"])
        piece = question["piece"]
        alpha = piece[..., 3] if piece.ndim == 3 and piece.shape[2] == 4 else np.full(piece.shape[:2], 255, np.uint8)
        outline = cv2.Canny(alpha, 100, 200)
        if h["dilate"]:
            kernel = np.ones((h["dilate"], h["dilate"]), np.uint8)
            edges, outline = cv2.dilate(edges, kernel), cv2.dilate(outline, kernel)
        return {"edges": edges, "outline": outline, "y": int(question["y"])}

    def read_prepared(self, batch):
        readings = []
        for p in batch:
            edges, outline, y = p["edges"], p["outline"], p["y"]
            h, w = outline.shape
            top = max(0, min(y - self.hparams["band"], edges.shape[0] - h))
            bottom = min(edges.shape[0], y + h + self.hparams["band"])
            band = edges[top:bottom]
            if band.shape[0] < h or band.shape[1] < w or not outline.any():
                readings.append(Reading("", []))
                continue
            scores = cv2.matchTemplate(band.astype(np.float32), outline.astype(np.float32), cv2.TM_CCORR_NORMED)
            best = float(scores.max())
            x = int(np.unravel_index(int(np.argmax(scores)), scores.shape)[1])
            readings.append(Reading(str(x), [min(1.0, max(0.0, best))],
                                    details={"scores_along_x": np.round(scores.max(axis=0), 3).tolist()}))
        return readings
