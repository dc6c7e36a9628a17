"""Readers of rotation CAPTCHAs (kind "rotation"): how far must the picture turn to stand upright?

- `rotnet`: a CNN angle classifier, as RotNet does: one class per `bin` degrees over the whole
  turn, trained (through the shared loop) until it converges;
- `orientation`: a naive baseline with no training: the dominant edge orientation gives the turn
  up to a quarter turn, and the quarter that puts the brighter half on top is chosen (skies are
  light, grounds dark).
"""

from __future__ import annotations

import cv2
import numpy as np

from ..errors import CaptchalabError
from .base import Attacker, Param, Reading, register_attacker, softmax


def disc(image: np.ndarray, side: int) -> np.ndarray:
    """The round picture at side x side, the corners outside its circle set to mid-grey."""
    small = cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA)
    mask = np.zeros((side, side), np.uint8)
    cv2.circle(mask, (side // 2, side // 2), side // 2, 1, -1)
    small[mask == 0] = 128
    return small


@register_attacker
class RotNet(Attacker):
    name = "rotnet"
    kind = "rotation"
    description = "A CNN angle classifier (RotNet): one class per bin of degrees, trained until it converges."
    fresh_examples = True  # the shared loop can draw new CAPTCHAs every epoch (train captcha --fresh)
    params = (
        Param("side", int, 64, 32, 256, "the picture's side in pixels at the network's input"),
        Param("bin", int, 5, 1, 45, "degrees per class (360 must be a multiple)"),
        Param("budget", int, 400_000, 1, 10**9, "training pictures seen at most"),
        Param("batch_size", int, 64, 1, 1024, "training batch size"),
        Param("learning_rate", float, 1e-3, 1e-6, 1.0, "peak learning rate (half when fine-tuning)"),
    )

    def prepare(self, image, question):
        return disc(image, self.hparams["side"])

    def build(self, seed):
        import keras
        from keras import layers

        if 360 % self.hparams["bin"]:
            raise CaptchalabError(f"bin={self.hparams['bin']}: 360 must be a multiple of it")
        init = keras.initializers.HeNormal(seed=seed)
        side = self.hparams["side"]
        x = inputs = keras.Input((side, side, 3), name="input")
        for block, filters in enumerate((32, 64, 64, 128), start=1):
            x = layers.Conv2D(
                filters, 3, padding="same", use_bias=False, kernel_initializer=init, name=f"block{block}_conv"
            )(x)
            x = layers.BatchNormalization(name=f"block{block}_bn")(x)
            x = layers.ReLU(name=f"block{block}_relu")(x)
            x = layers.MaxPooling2D(name=f"block{block}_pool")(x)
        x = layers.Flatten(name="flatten")(x)  # not pooled away: where things are is the answer
        x = layers.Dense(256, activation="relu", kernel_initializer=init, name="fc1")(x)
        x = layers.Dropout(0.3, name="dropout")(x)
        outputs = layers.Dense(360 // self.hparams["bin"], dtype="float32", name="angles")(x)
        return keras.Model(inputs, outputs, name="rotnet")

    def targets(self, texts):
        return np.array([int(t) // self.hparams["bin"] for t in texts], np.int32)

    def loss(self, targets, outputs):
        import keras

        return keras.losses.sparse_categorical_crossentropy(targets, outputs, from_logits=True)

    def read_prepared(self, batch):
        if not batch:
            return []
        from ..model import forward

        probabilities = softmax(np.asarray(forward(self.model)(self.inputs(batch)), np.float64))
        step = self.hparams["bin"]
        readings = []
        for p in probabilities:
            k = int(np.argmax(p))
            # the centre of the bin, nudged towards the likelier neighbour
            left, right = p[(k - 1) % len(p)], p[(k + 1) % len(p)]
            offset = 0.5 * step * (right - left) / max(p[k], 1e-9)
            readings.append(Reading(str(int(round(k * step + step / 2 + offset)) % 360), [float(p[k])]))
        return readings


@register_attacker
class Orientation(Attacker):
    name = "orientation"
    kind = "rotation"
    trainable = False
    description = (
        "A naive baseline: the dominant edge orientation gives the turn up to a quarter turn; the "
        "quarter that puts the brighter half on top wins."
    )
    params = (Param("side", int, 128, 32, 512, "the picture's side in pixels while measuring"),)

    def prepare(self, image, question):
        return disc(image, self.hparams["side"])

    def read_prepared(self, batch):
        readings = []
        for image in batch:
            grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float32)
            gx, gy = cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1)
            side = grey.shape[0]
            inner = np.zeros_like(grey, np.uint8)
            cv2.circle(inner, (side // 2, side // 2), side // 2 - 3, 1, -1)
            magnitude = np.hypot(gx, gy) * inner
            # orientations modulo 90 degrees, weighted by edge strength (angle doubling, four times)
            theta = np.arctan2(gy, gx)
            dominant = np.degrees(np.angle(np.sum(magnitude * np.exp(4j * theta)))) / 4  # in (-45, 45]
            best, brightest = 0, -np.inf
            for quarter in range(4):
                turn = (dominant + 90 * quarter) % 360
                m = cv2.getRotationMatrix2D((side / 2, side / 2), -turn, 1.0)  # clockwise by `turn`
                upright = cv2.warpAffine(grey, m, (side, side), borderValue=128)
                contrast = upright[: side // 2].mean() - upright[side // 2 :].mean()
                if contrast > brightest:
                    best, brightest = turn, contrast
            readings.append(Reading(str(int(round(best)) % 360), []))
        return readings
