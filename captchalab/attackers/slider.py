"""Readers of slider CAPTCHAs (kind "slider"): where is the gap the piece fits?

- `template`: the classic OpenCV solver off-the-shelf tools use: the piece's outline (from its
  transparency) matched against the background's edges along the piece's row.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..errors import CaptchalabError
from .base import Attacker, Param, Reading, register_attacker, softmax


@register_attacker
class Template(Attacker):
    name = "template"
    kind = "slider"
    trainable = False
    description = (
        "OpenCV: the piece's outline matched against the background's edges along its row, as "
        "off-the-shelf slider solvers do."
    )
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
            readings.append(
                Reading(
                    str(x),
                    [min(1.0, max(0.0, best))],
                    details={"scores_along_x": np.round(scores.max(axis=0), 3).tolist()},
                )
            )
        return readings


def match_profiles(image: np.ndarray, piece: np.ndarray, y: int, rows: int, band: int = 2) -> tuple:
    """Along x, how well the piece fits at each position of its row: its outline against the
    background's edges, and its content against the background's (masked, scale-invariant, so a
    shaded gap still matches): two profiles of W - w + 1 values, and the background band."""
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    edges = cv2.dilate(cv2.Canny(cv2.GaussianBlur(grey, (5, 5), 0), 20, 60), np.ones((3, 3), np.uint8))
    alpha = piece[..., 3]
    outline = cv2.dilate(cv2.Canny(alpha, 100, 200), np.ones((3, 3), np.uint8))
    h, w = alpha.shape
    top = max(0, min(y - band, image.shape[0] - h))
    bottom = min(image.shape[0], max(top + h, y + h + band))
    edge_fit = cv2.matchTemplate(
        edges[top:bottom].astype(np.float32), outline.astype(np.float32), cv2.TM_CCORR_NORMED
    ).max(axis=0)
    content_fit = cv2.matchTemplate(
        grey[top:bottom].astype(np.float32),
        cv2.cvtColor(piece[..., :3], cv2.COLOR_BGR2GRAY).astype(np.float32),
        cv2.TM_CCORR_NORMED,
        mask=(alpha > 128).astype(np.float32),
    ).max(axis=0)
    strip = cv2.resize(grey[top:bottom], (image.shape[1], rows), interpolation=cv2.INTER_AREA)
    strip_edges = cv2.resize(edges[top:bottom], (image.shape[1], rows), interpolation=cv2.INTER_AREA)
    return np.nan_to_num(edge_fit), np.nan_to_num(content_fit), strip, strip_edges


@register_attacker
class Locator(Attacker):
    """A small CNN over the piece's row that learns where the gap is: its input is the row
    (grey and edges) and the two classic fit profiles along x (`match_profiles`), its output one
    score per x. Trained through the shared loop until it converges."""

    name = "locator"
    kind = "slider"
    description = (
        "A learned locator: a small CNN over the piece's row and the classic fit profiles, one "
        "score per x (trained until it converges)."
    )
    fresh_examples = True  # the shared loop can draw new CAPTCHAs every epoch (train captcha --fresh)
    params = (
        Param("max_width", int, 512, 64, 2048, "widest background it reads, in pixels"),
        Param("rows", int, 16, 8, 64, "rows the piece's band is resized to"),
        Param("budget", int, 200_000, 1, 10**9, "training sliders seen at most"),
        Param("batch_size", int, 32, 1, 1024, "training batch size"),
        Param("learning_rate", float, 1e-3, 1e-6, 1.0, "peak learning rate (half when fine-tuning)"),
    )

    def prepare(self, image, question):
        width = image.shape[1]
        if width > self.hparams["max_width"]:
            raise CaptchalabError(f"the background is {width} px wide, more than max_width={self.hparams['max_width']}")
        piece = question["piece"]
        edge_fit, content_fit, strip, strip_edges = match_profiles(
            image, piece, int(question["y"]), self.hparams["rows"]
        )
        rows, cols = self.hparams["rows"], self.hparams["max_width"]
        x = np.zeros((rows, cols, 4), np.float32)
        x[:, :width, 0], x[:, :width, 1] = strip / 255.0, strip_edges / 255.0
        x[:, : len(edge_fit), 2], x[:, : len(content_fit), 3] = edge_fit, content_fit
        return {"input": x.astype(np.float16), "positions": len(edge_fit)}

    def inputs(self, prepared):
        return np.stack([p["input"] for p in prepared]).astype(np.float32)

    def build(self, seed):
        import keras
        from keras import layers

        init = keras.initializers.HeNormal(seed=seed)
        rows, cols = self.hparams["rows"], self.hparams["max_width"]
        x = inputs = keras.Input((rows, cols, 4), name="input")
        for k, (filters, pool) in enumerate(((16, 2), (32, 2), (32, rows // 4)), start=1):
            x = layers.Conv2D(
                filters, (3, 7), padding="same", activation="relu", kernel_initializer=init, name=f"conv{k}"
            )(x)
            x = layers.MaxPooling2D((pool, 1), name=f"pool{k}")(x)
        x = layers.Conv2D(1, (1, 9), padding="same", name="score")(x)
        return keras.Model(inputs, layers.Reshape((cols,), name="positions")(x), name="locator")

    def targets(self, texts):
        return np.array([int(t) for t in texts], np.int32)

    def loss(self, targets, outputs):
        import keras

        return keras.losses.sparse_categorical_crossentropy(targets, outputs, from_logits=True)

    def read_prepared(self, batch):
        if not batch:
            return []
        from ..model import forward

        logits = np.asarray(forward(self.model)(self.inputs(batch)), np.float64)
        readings = []
        for p, scores in zip(batch, logits):
            probabilities = softmax(scores[: p["positions"]])  # over the positions the piece can take
            x = int(np.argmax(probabilities))
            readings.append(Reading(str(x), [float(probabilities[x])]))
        return readings
