# An attacker plugin as an outside author writes it from docs/attackers.md: a fixed-slice reader
# (the image cut into `length` equal columns, one softmax each). It declares its model, targets
# and loss; the shared loop trains it (no fit written here).
import cv2
import numpy as np

from captchalab.attackers import Attacker, Reading, register_attacker
from captchalab.generator import Param


@register_attacker
class Slicer(Attacker):
    name = "slicer"
    description = "Cuts the image into equal columns and reads each with a small CNN."
    params = (
        Param("length", int, 4, 1, 8, "characters per CAPTCHA"),
        Param("epochs", int, 3, 1, 100, "training epochs"),
        Param("width", int, 64, 16, 256, "input width in pixels"),
    )

    def prepare(self, image, length):
        grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        return cv2.resize(grey, (self.hparams["width"], 24), interpolation=cv2.INTER_AREA)

    def build(self, seed):
        import keras
        from keras import layers

        n, k = self.hparams["length"], len(self.charset)
        x = inputs = keras.Input((24, self.hparams["width"], 1))
        x = layers.Conv2D(8, 3, padding="same", activation="relu")(x)
        x = layers.MaxPooling2D()(x)
        x = layers.Dense(n * k)(layers.Flatten()(x))
        return keras.Model(inputs, layers.Reshape((n, k))(x))

    def targets(self, texts):
        return np.array([[self.charset.index(c) for c in t] for t in texts], np.int32)

    def loss(self, targets, outputs):
        import keras

        return keras.ops.sum(keras.losses.sparse_categorical_crossentropy(targets, outputs, from_logits=True), -1)

    def read_prepared(self, batch):
        logits = self.model(self.inputs(batch), training=False).numpy()
        probs = np.exp(logits - logits.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        return [Reading("".join(self.charset[i] for i in p.argmax(-1)), [float(c) for c in p.max(-1)]) for p in probs]
