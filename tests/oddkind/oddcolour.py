# A CAPTCHA kind written outside captchalab, as a stranger would from docs/plugins.md: "pick the
# odd colour" (a row of squares, one a different colour; the answer is its index, 0 the leftmost).
# One file holds the kind, a style that draws it, an attacker that reads it off the shelf and one
# trained by the shared loop. tests/test_kinds.py sends it through the whole house.
import cv2
import numpy as np

from captchalab.attackers import Attacker, Reading, register_attacker
from captchalab.generator import Challenge, Generator, Param, register
from captchalab.kinds import Kind, register_kind

SIDE, GAP, MOST = 24, 4, 8


class OddKind(Kind):
    name, columns = "odd", ("odd",)
    unit = "challenge"
    unit_definition = "the share of challenges whose odd square was picked"
    default_attacker, example_style = "oddcnn", "oddcolour"
    asks = "Type the number of the square whose colour differs (0 is the leftmost)."

    def row(self, question, answer):
        return [answer]

    def parse_row(self, cells):
        value = cells["odd"].strip()
        if not value.isdigit() or int(value) >= MOST:
            raise ValueError(f"odd {value!r} is not a square number 0-{MOST - 1}")
        return {}, str(int(value))


register_kind(OddKind())


@register
class OddColour(Generator):
    name, kind = "oddcolour", "odd"
    description = "A row of squares, one of another colour."
    params = (
        Param("squares", int, 5, 3, MOST, "squares in the row"),
        Param("difference", float, 90.0, 4.0, 120.0, "how far the odd colour is, on one channel"),
        Param("noise", float, 0.0, 0.0, 60.0, "pixel noise (standard deviation)"),
    )

    def at_strength(self, strength):
        return {"difference": 100.0 - 90.0 * strength, "noise": 30.0 * strength}

    def challenge(self, rng, p):
        n = p["squares"]
        image = np.full((SIDE + 8, n * (SIDE + GAP) + GAP, 3), 255.0)
        base = rng.integers(60, 190, 3).astype(float)
        odd = int(rng.integers(n))
        shifted = base.copy()
        channel = int(rng.integers(3))
        shifted[channel] += p["difference"] if base[channel] < 128 else -p["difference"]
        for k in range(n):
            x = GAP + k * (SIDE + GAP)
            image[4 : 4 + SIDE, x : x + SIDE] = shifted if k == odd else base
        image += rng.normal(0, p["noise"], image.shape) if p["noise"] else 0
        return Challenge(np.clip(image, 0, 255).astype(np.uint8), {}, str(odd), {"squares": n})


def square_colours(image):
    n = (image.shape[1] - GAP) // (SIDE + GAP)
    return np.array(
        [
            image[4 : 4 + SIDE, GAP + k * (SIDE + GAP) : GAP + k * (SIDE + GAP) + SIDE].reshape(-1, 3).mean(0)
            for k in range(n)
        ],
        np.float32,
    )


@register_attacker
class OddPicker(Attacker):
    name, kind, trainable = "oddpicker", "odd", False
    description = "Picks the square farthest from the median colour (no training)."

    def prepare(self, image, question):
        return square_colours(image)

    def read_prepared(self, batch):
        readings = []
        for colours in batch:
            far = np.linalg.norm(colours - np.median(colours, axis=0), axis=1)
            readings.append(Reading(str(int(np.argmax(far))), [1.0]))
        return readings


@register_attacker
class OddCNN(Attacker):
    name, kind = "oddcnn", "odd"
    description = "A small CNN with one output per square position."
    params = (Param("budget", int, 6000, 1, 10**9, "training challenges seen at most"),)

    def prepare(self, image, question):
        return cv2.resize(image, (MOST * (SIDE + GAP) // 4, 8), interpolation=cv2.INTER_AREA)

    def geometry(self):
        return {"height": 8, "width": MOST * (SIDE + GAP) // 4, "channels": 3}

    def build(self, seed):
        import keras
        from keras import layers

        x = inputs = keras.Input((8, MOST * (SIDE + GAP) // 4, 3))
        x = layers.Conv2D(8, 3, padding="same", activation="relu")(x)
        x = layers.Flatten()(x)
        return keras.Model(inputs, layers.Dense(MOST)(x))

    def targets(self, texts):
        return np.array([int(t) for t in texts], np.int32)

    def loss(self, targets, outputs):
        import keras

        return keras.losses.sparse_categorical_crossentropy(targets, outputs, from_logits=True)

    def read_prepared(self, batch):
        logits = np.asarray(self.model(self.inputs(batch), training=False))
        return [Reading(str(int(np.argmax(row))), [1.0]) for row in logits]
