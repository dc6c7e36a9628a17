"""Readers of click-in-order CAPTCHAs (kind "click"): where is each target, in the strip's order?

- `ddddocr-click`: off the shelf, as its users wire it: ddddocr's detector (`common_det.onnx`,
  inside its wheel) finds boxes; for a prompt in words (text click) ddddocr's OCR reads each box
  and each prompt character takes the box read as it; for a prompt in pictures (icon click) an
  untrained matcher (colour histograms, or grey templates) compares each box with each strip item
  and the best one-to-one assignment (Hungarian) decides. Nothing to train.
- `clicknet`: a trained two-stage reader in one network: a dense detector over the scene (a
  CenterNet-style map of embeddings at a quarter of its resolution) and a siamese matcher that
  embeds each strip item and compares it with every place of the scene; per item, a heat map of
  where it is. Trained through the shared loop until it converges.

Both read the strip as `count` equal-width parts, as deployed strips lay their items out.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from ..errors import CaptchalabError
from ..kinds.click import MAX_TARGETS, format_clicks, parse_boxes
from .base import Attacker, Param, Reading, register_attacker, softmax
from .ddddocr import require, solver


def strip_items(strip: np.ndarray, count: int) -> list[np.ndarray]:
    """The strip cut into `count` equal-width parts, each cropped to what differs from its background."""
    width = strip.shape[1]
    items = []
    for k in range(count):
        part = strip[:, k * width // count : (k + 1) * width // count]
        background = np.median(part.reshape(-1, part.shape[-1]), axis=0)
        ink = np.abs(part.astype(np.int16) - background).max(axis=2) > 30
        ys, xs = np.nonzero(ink)
        items.append(part[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1] if len(xs) else part)
    return items


def _histogram(image: np.ndarray) -> np.ndarray:
    """A hue-saturation histogram of the image's colourful, non-background pixels."""
    hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV)
    mask = (hsv[..., 1] > 40).astype(np.uint8)
    hist = cv2.calcHist([hsv], [0, 1], mask if mask.sum() > 20 else None, [18, 4], [0, 180, 0, 256])
    return cv2.normalize(hist, None, 1, 0, cv2.NORM_L1).astype(np.float32)


def _template(image: np.ndarray, side: int = 32) -> np.ndarray:
    grey = cv2.resize(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), (side, side), interpolation=cv2.INTER_AREA)
    grey = grey.astype(np.float32) - grey.mean()
    return grey / (np.linalg.norm(grey) + 1e-6)


def assign(cost: np.ndarray) -> list[int]:
    """For each row (a prompt item) the column (a found box) of the cheapest one-to-one assignment;
    rows left without a column (fewer boxes than items) get -1."""
    from scipy.optimize import linear_sum_assignment

    chosen = [-1] * cost.shape[0]
    if cost.size:
        for row, column in zip(*linear_sum_assignment(cost)):
            chosen[int(row)] = int(column)
    return chosen


@register_attacker
class DdddocrClick(Attacker):
    name = "ddddocr-click"
    kind = "click"
    trainable = False
    description = (
        "Off the shelf: ddddocr's detector finds boxes; its OCR reads them for a prompt in words, a "
        "colour-histogram or template matcher pairs them with the strip's pictures (pip extra captchalab[ddddocr])."
    )
    params = (
        Param("matcher", str, "histogram", help="for picture prompts: histogram (hue-saturation) or template (grey)"),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        require(self.name)
        if self.hparams["matcher"] not in ("histogram", "template"):
            raise CaptchalabError(f"{self.name}: matcher={self.hparams['matcher']!r}: use histogram or template")
        self._det = self._ocr = None

    def prepare(self, image, question):
        return {
            "image": image,
            "prompt": question.get("prompt", ""),
            "count": int(question["count"]),
            "strip": question.get("strip"),
        }

    def read_prepared(self, batch):
        if self._det is None:
            self._det = solver(det=True, ocr=False)
        return [self.read_one(p) for p in batch]

    def read_one(self, p) -> Reading:
        image, count = p["image"], p["count"]
        boxes = [tuple(int(v) for v in b) for b in self._det.detection(cv2.imencode(".png", image)[1].tobytes())]
        crops = [image[max(b[1], 0) : b[3], max(b[0], 0) : b[2]] for b in boxes]
        crops = [c if c.size else np.zeros((8, 8, 3), np.uint8) for c in crops]
        if p["prompt"]:  # words: read each box, match characters
            if self._ocr is None:
                self._ocr = solver()
            reads = [self._ocr.classification(cv2.imencode(".png", c)[1].tobytes()) for c in crops]
            cost = np.array(
                [
                    [0.0 if char in read else 1.0 + (char.lower() not in read.lower()) for read in reads]
                    for char in p["prompt"]
                ]
            )
        else:  # pictures: compare each box with each strip item
            items = strip_items(p["strip"], count) if p["strip"] is not None else []
            if self.hparams["matcher"] == "histogram":
                found = [_histogram(c) for c in crops]
                cost = np.array(
                    [[cv2.compareHist(_histogram(i), f, cv2.HISTCMP_BHATTACHARYYA) for f in found] for i in items]
                )
            else:
                found = [_template(c) for c in crops]
                cost = np.array([[-float(_template(i).ravel() @ f.ravel()) for f in found] for i in items])
            reads = []
        chosen = assign(cost.reshape(-1, len(boxes)) if boxes else np.zeros((0, 0)))
        clicks = [((boxes[c][0] + boxes[c][2]) / 2, (boxes[c][1] + boxes[c][3]) / 2) for c in chosen if c >= 0]
        return Reading(
            format_clicks(clicks),
            [1.0] * len(clicks),
            details={"found_boxes": [list(b) for b in boxes], "box_reads": reads, "matched": chosen},
        )


@register_attacker
class ClickNet(Attacker):
    """One network, two stages: the scene's embedding map (a dense detector) and each strip item's
    embedding (the matcher), compared by a dot product at every place of the map: per item, a
    heat map over the scene whose peak is the click."""

    name = "clicknet"
    kind = "click"
    description = (
        "A learned two-stage reader: a dense detector's embedding map of the scene, matched with each "
        "strip item's embedding (siamese), one heat map per item (trained until it converges)."
    )
    fresh_examples = True  # the shared loop can draw new challenges every epoch (train captcha --fresh)
    differentiable = True  # adversarial click challenges: gradients from the scene's pixels to every heat map
    params = (
        Param("max_width", int, 320, 64, 1024, "widest scene it reads, in pixels"),
        Param("max_height", int, 200, 64, 1024, "tallest scene it reads, in pixels"),
        Param("scale", float, 0.64, 0.25, 1.0, "scenes are scaled by this before the network reads them"),
        Param("width", int, 48, 8, 256, "channels of the scene's map and the items' embeddings"),
        Param("budget", int, 450_000, 1, 10**9, "training challenges seen at most"),
        Param("batch_size", int, 32, 1, 1024, "training batch size"),
        Param("learning_rate", float, 1e-3, 1e-6, 1.0, "peak learning rate (half when fine-tuning)"),
    )
    ITEM = 32  # pixels of a strip item's side at the network's input
    STRIDE = 4  # scene pixels (after scaling) per heat-map cell

    def _shape(self) -> tuple[int, int]:
        h = self.hparams
        cell = self.STRIDE
        return (
            math.ceil(h["max_height"] * h["scale"] / cell) * cell,
            math.ceil(h["max_width"] * h["scale"] / cell) * cell,
        )

    def prepare(self, image, question):
        h = self.hparams
        if image.shape[1] > h["max_width"] or image.shape[0] > h["max_height"]:
            raise CaptchalabError(
                f"the scene is {image.shape[1]}x{image.shape[0]}, more than max_width x max_height "
                f"({h['max_width']}x{h['max_height']})"
            )
        count = int(question["count"])
        if count > MAX_TARGETS or count * self.ITEM > self._shape()[1]:
            raise CaptchalabError(f"{count} targets: more than the network's strip holds")
        rows, cols = self._shape()
        packed = np.zeros((rows + self.ITEM, cols, 3), np.uint8)
        scaled = cv2.resize(image, None, fx=h["scale"], fy=h["scale"], interpolation=cv2.INTER_AREA)
        packed[: scaled.shape[0], : scaled.shape[1]] = scaled
        strip = question.get("strip")
        if strip is not None:  # the strip's items, each fitted into a square, in a row below the scene
            for k, item in enumerate(strip_items(strip, count)):
                side = self.ITEM
                fit = side / max(item.shape[:2])
                small = cv2.resize(
                    item,
                    (max(1, int(item.shape[1] * fit)), max(1, int(item.shape[0] * fit))),
                    interpolation=cv2.INTER_AREA,
                )
                cell = np.full((side, side, 3), 236, np.uint8)
                y, x = (side - small.shape[0]) // 2, (side - small.shape[1]) // 2
                cell[y : y + small.shape[0], x : x + small.shape[1]] = small
                packed[rows:, k * side : (k + 1) * side] = cell
        return {"input": packed, "count": count, "size": image.shape[:2]}

    def inputs(self, prepared):
        return np.stack([p["input"] for p in prepared]).astype(np.float32) / 255.0

    def build(self, seed):
        import keras
        from keras import layers

        init = keras.initializers.HeNormal(seed=seed)
        rows, cols = self._shape()
        side, slots, width = self.ITEM, cols // self.ITEM, self.hparams["width"]
        inputs = keras.Input((rows + side, cols, 3), name="input")
        scene = layers.Cropping2D(((0, side), (0, 0)), name="scene")(inputs)
        x = scene
        for k, (filters, dilation, pool) in enumerate(((16, 1, True), (32, 1, True), (width, 1, False), (width, 2, False), (width, 4, False)), start=1):  # fmt: skip
            # no batch normalisation: its running statistics lag far behind on a few hundred steps
            x = layers.Conv2D(
                filters,
                3,
                padding="same",
                dilation_rate=dilation,
                activation="relu",
                kernel_initializer=init,
                name=f"det{k}",
            )(x)
            if pool:
                x = layers.MaxPooling2D(2, name=f"det{k}_pool")(x)
        x = layers.Conv2D(width, 1, kernel_initializer=init, name="embed")(x)
        places = layers.Reshape(((rows // self.STRIDE) * (cols // self.STRIDE), width), name="places")(x)
        strip = layers.Cropping2D(((rows, 0), (0, cols - slots * side)), name="strip")(inputs)
        items = layers.Reshape((side, slots, side, 3), name="cells")(strip)
        items = layers.Permute((2, 1, 3, 4), name="items")(items)
        tower = keras.Sequential(
            [
                keras.Input((side, side, 3)),
                layers.Conv2D(16, 3, padding="same", activation="relu", kernel_initializer=init),
                layers.MaxPooling2D(2),
                layers.Conv2D(32, 3, padding="same", activation="relu", kernel_initializer=init),
                layers.MaxPooling2D(2),
                layers.Conv2D(width, 3, padding="same", activation="relu", kernel_initializer=init),
                layers.GlobalAveragePooling2D(),
                layers.Dense(width, kernel_initializer=init),
            ],
            name="matcher",
        )
        embedded = layers.TimeDistributed(tower, name="item_embeddings")(items)
        heat = layers.Dot(axes=(2, 2), name="heat")([embedded, places])  # (slots, places)
        return keras.Model(inputs, heat, name="clicknet")

    def targets(self, texts):
        """Per slot, the heat-map cell holding its target's centre (-1: no target in that slot)."""
        h = self.hparams
        rows, cols = self._shape()
        slots, across = cols // self.ITEM, cols // self.STRIDE
        out = np.full((len(texts), slots), -1, np.int32)
        for i, text in enumerate(texts):
            for k, (x0, y0, x1, y1) in enumerate(parse_boxes(text)[:slots]):
                cx, cy = (x0 + x1) / 2 * h["scale"], (y0 + y1) / 2 * h["scale"]
                r = min(int(cy // self.STRIDE), rows // self.STRIDE - 1)
                c = min(int(cx // self.STRIDE), across - 1)
                out[i, k] = r * across + c
        return out

    def loss(self, targets, outputs):
        import keras
        from keras import ops

        present = ops.cast(targets >= 0, "float32")
        logits = ops.cast(outputs, "float32")  # (mixed precision computes in bfloat16)
        per_slot = keras.losses.sparse_categorical_crossentropy(ops.maximum(targets, 0), logits, from_logits=True)
        return ops.sum(per_slot * present, axis=-1) / ops.maximum(ops.sum(present, axis=-1), 1.0)

    def adversarial_objective(self, images, texts, boxes, targets=None, questions=None):
        """The padded batch of scenes (BGR, 0-255), its mask of real pixels, and the constants
        `adversarial_loss` needs: each challenge's strip row as the network reads it (the strip is
        served apart and not perturbed) and its targets' heat-map cells."""
        from ..pixels import pad_batch

        if targets:
            raise CaptchalabError("targeted perturbations apply to text CAPTCHAs only")
        if not questions:
            raise CaptchalabError("perturbing a click challenge needs its questions (with the strip)")
        x0, valid = pad_batch(images, multiple=1)
        rows = self._shape()[0]
        strips = np.stack([self.prepare(im, q)["input"][rows:] for im, q in zip(images, questions)])
        return x0, valid, (strips.astype(np.float32) / 255.0, self.targets(texts))

    def adversarial_loss(self, x, constants):
        """Per challenge, the heat maps' cross-entropy at the targets' cells (perturb() ascends it:
        every target fades from its item's heat map)."""
        import tensorflow as tf

        strips, goal = constants
        rows, cols = self._shape()
        scale = self.hparams["scale"]
        from ..pixels import resize_matrix

        height, width = x.shape[1], x.shape[2]
        # INTER_AREA as matrices (TensorFlow's area resize has no gradient)
        down_h = tf.constant(resize_matrix(height, round(height * scale)), tf.float32)
        down_w = tf.constant(resize_matrix(width, round(width * scale)), tf.float32)
        scaled = tf.einsum("ph,bhwc,qw->bpqc", down_h, x / 255.0, down_w)
        scene = tf.image.pad_to_bounding_box(scaled, 0, 0, rows, cols)  # as prepare() lays it: top left
        outputs = tf.cast(self.model(tf.concat([scene, strips], axis=1), training=False), tf.float32)
        return self.loss(goal, outputs)

    def read_prepared(self, batch):
        if not batch:
            return []
        from ..model import forward

        heat = np.asarray(forward(self.model)(self.inputs(batch)), np.float64)
        rows, cols = self._shape()
        across, scale = cols // self.STRIDE, self.hparams["scale"]
        readings = []
        for p, maps in zip(batch, heat):
            clicks, confidence = [], []
            height, width = p["size"]
            for k in range(p["count"]):
                probabilities = softmax(maps[k])
                place = int(np.argmax(probabilities))
                r, c = divmod(place, across)
                x = min((c + 0.5) * self.STRIDE / scale, width - 1)
                y = min((r + 0.5) * self.STRIDE / scale, height - 1)
                clicks.append((x, y))
                confidence.append(float(probabilities[place]))
            readings.append(Reading(format_clicks(clicks), confidence))
        return readings
