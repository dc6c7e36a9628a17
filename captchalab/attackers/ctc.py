"""`ctc`: segmentation-free. The whole CAPTCHA, grey (or, with `colour=true`, in colour), resized
to a fixed height and padded to a fixed width, goes through a small convolution stack and a
bidirectional GRU that gives character logits for every time step (a few columns of the image
each). It is trained with Keras 3's CTC loss and decoded greedily, so it reads any length up to
the width allows and needs no length hint.

Keras 3's CTC convention: logits (not softmax), class 0 is the blank and the label padding, so
character i of the charset is class i + 1.
"""
from __future__ import annotations

import cv2
import numpy as np

from ..charset import charset_name
from ..errors import CaptchalabError
from ..model import forward
from ..pixels import GREY, pad_batch, resize_matrix
from ..registry import Param
from ..training import TeacherStage, fit_converging, fresh_seed, learning_rate, run_record
from .base import Attacker, BaseRecipe, Reading, register_attacker, softmax

MAX_LABEL = 8
SMALL_SET_SHARE = 15  # too few CAPTCHAs held out to decide: the budget over this runs whole


def ctc_input(image: np.ndarray, height: int, width: int, colour: bool = False) -> np.ndarray:
    """Grey, dark ink on a light background, contrast stretched, scaled to `height` (squeezed
    if it would be wider than `width`) and padded on the right with its background grey. With
    `colour`, the BGR image (height x width x 3) through the same stretch and inversion, decided
    on its grey, and padded with its background colour."""
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    picture = (image if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)) if colour else grey
    lo, hi = np.percentile(grey, (1, 99))
    if hi - lo > 8:
        grey, picture = (np.clip((a.astype(np.float32) - lo) * (255.0 / (hi - lo)), 0, 255).astype(np.uint8)
                         for a in (grey, picture))
    if np.median(grey) < 128:  # the background fills most of a CAPTCHA; make it the light side
        picture = 255 - picture
    h, w = grey.shape
    new_w = max(1, min(width, round(w * height / h)))
    resized = cv2.resize(picture, (new_w, height), interpolation=cv2.INTER_AREA if h > height else cv2.INTER_LINEAR)
    background = np.median(resized.reshape(height * new_w, -1), axis=0).astype(int)
    out = np.empty((height, width) + resized.shape[2:], np.uint8)
    out[:] = background if colour else background[0]
    out[:, :new_w] = resized
    return out


def greedy_decode(probs: np.ndarray, charset: str) -> list[tuple[str, list[float]]]:
    """Best path: the likeliest class per step, repeats merged, blanks dropped. The confidence
    of a character is its highest probability over the steps that emitted it."""
    out = []
    best = probs.argmax(axis=-1)
    for p, path in zip(probs, best):
        text, conf, previous = [], [], 0
        for t, k in enumerate(path):
            if k != 0 and k != previous:
                text.append(charset[k - 1])
                conf.append(float(p[t, k]))
            elif k != 0 and conf:
                conf[-1] = max(conf[-1], float(p[t, k]))
            previous = k
        out.append(("".join(text), [round(c, 4) for c in conf]))
    return out


def augment(images: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """CAPTCHA-like variation: small rotation, shear, scale and shift, blur, noise, contrast,
    and now and then a thin line across, of grey (N, h, w) or colour (N, h, w, 3) images."""
    if strength <= 0:
        return images
    n, h, w = images.shape[:3]
    colour = images.ndim == 4
    out = np.empty_like(images)
    for i in range(n):
        im = images[i]
        background = tuple(np.median(im.reshape(h * w, 3), axis=0).tolist()) if colour else int(np.median(im))
        angle = rng.uniform(-3, 3) * strength
        shear = rng.uniform(-0.15, 0.15) * strength
        sx, sy = 1 + rng.uniform(-0.1, 0.05) * strength, 1 + rng.uniform(-0.1, 0.05) * strength
        m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
        m[:, :2] = m[:, :2] @ np.array([[sx, shear], [0, sy]])
        m[:, 2] += (w / 2, h / 2) - m[:, :2] @ np.array([w / 2, h / 2])
        m[:, 2] += rng.uniform(-3, 3) * strength, rng.uniform(-2, 2) * strength
        im = cv2.warpAffine(im, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=background)
        if rng.random() < 0.25 * strength:
            im = cv2.GaussianBlur(im, (3, 3), rng.uniform(0.3, 1.0))
        if rng.random() < 0.2 * strength:
            y0, y1 = rng.integers(0, h, 2)
            ink = tuple(rng.integers(0, 120, 3).tolist()) if colour else int(rng.integers(0, 120))
            cv2.line(im, (0, int(y0)), (w - 1, int(y1)), ink, 1, cv2.LINE_AA)
        if rng.random() < 0.5 * strength:
            gain, bias = rng.uniform(0.6, 1.1), rng.uniform(-20, 40)
            im = np.clip(im.astype(np.float32) * gain + bias, 0, 255)
        if rng.random() < 0.3 * strength:
            im = np.clip(im + rng.normal(0, rng.uniform(2, 12), im.shape), 0, 255)
        out[i] = im
    return out


@register_attacker
class Ctc(Attacker):
    name = "ctc"
    description = "Segmentation-free CRNN (convolutions + bidirectional GRU) trained with CTC."
    differentiable = True
    semi_supervised = True  # fit() takes unlabelled CAPTCHAs (pseudo-labels from a mean teacher)
    fresh_examples = True   # fit() can train on CAPTCHAs drawn anew every epoch
    base = BaseRecipe()  # a mixture of the built-in styles at several strengths and lengths
    views = frozenset({"steps"})
    output_layer, output_offset = "logits", 1  # column 0 is the blank
    params = (
        Param("height", int, 32, 16, 96, "input height in pixels (a multiple of 8)"),
        Param("width", int, 128, 32, 512, "input width in pixels (a multiple of 4); wider images are squeezed"),
        Param("colour", bool, False, help="read the CAPTCHA in colour (three channels) instead of grey: lines "
              "or noise drawn in another hue than the characters stay apart from them"),
        Param("filters", int, 16, 8, 128, "filters of the first convolution (then 2x, 4x, 4x)"),
        Param("rnn_units", int, 128, 16, 512, "GRU units per direction"),
        Param("budget", int, 600_000, 1, 10 ** 9, "training examples seen at most (the run ends sooner when "
              "it converges); with under 300 CAPTCHAs held out, a fifteenth, run whole"),
        Param("epochs", int, 1000, 1, 10 ** 6, "passes over the training set at most"),
        Param("batch_size", int, 64, 1, 4096, "training batch size"),
        Param("learning_rate", float, 2e-3, 1e-6, 1.0, "peak learning rate from scratch (half when fine-tuning)"),
        Param("patience", int, 3, 1, 1000, "epochs without a validation gain before the learning rate "
              "is cut (after two cuts, the run ends)"),
        Param("augment", float, 1.0, 0.0, 2.0, "strength of the training augmentation"),
    )

    def prepare(self, image, length):
        return ctc_input(image, self.hparams["height"], self.hparams["width"], self.hparams["colour"])

    def channels(self) -> int:
        return 3 if self.hparams["colour"] else 1

    def network_input(self, images: np.ndarray) -> np.ndarray:
        """Prepared uint8 images (a batch) as the network takes them: float in [0, 1], channels last."""
        x = images.astype(np.float32) / 255.0
        return x if self.hparams["colour"] else x[..., None]

    def geometry(self):
        return {"height": self.hparams["height"], "width": self.hparams["width"], "channels": self.channels(),
                "time_steps": self.hparams["width"] // 4}

    def probabilities(self, batch: list[np.ndarray]) -> np.ndarray:
        """Per time step, the probability of the blank (column 0) and of each character."""
        x = self.network_input(np.stack(batch))
        logits = np.concatenate([forward(self.model)(x[i:i + 512]).numpy() for i in range(0, len(x), 512)])
        return softmax(logits)

    def read_prepared(self, batch):
        return [Reading(text, conf) for text, conf in greedy_decode(self.probabilities(batch), self.charset)]

    def build(self, seed):
        import keras
        from keras import layers
        h, w, f, u = (self.hparams[k] for k in ("height", "width", "filters", "rnn_units"))
        if h % 8 or w % 4:
            raise CaptchalabError(f"ctc: height must be a multiple of 8 and width of 4, got {h}x{w}")
        init = keras.initializers.HeNormal(seed=seed)
        inputs = keras.Input((h, w, self.channels()), name="image")
        x = inputs
        for i, (filters, pool) in enumerate([(f, (2, 2)), (2 * f, (2, 2)), (4 * f, None), (4 * f, (2, 1))], 1):
            x = layers.Conv2D(filters, 3, padding="same", use_bias=False, kernel_initializer=init, name=f"conv{i}")(x)
            x = layers.BatchNormalization(name=f"bn{i}")(x)
            x = layers.ReLU(name=f"relu{i}")(x)
            if pool:
                x = layers.MaxPooling2D(pool, name=f"pool{i}")(x)
        x = layers.Permute((2, 1, 3), name="columns")(x)              # (w/4, h/8, 4f)
        x = layers.Reshape((w // 4, (h // 8) * 4 * f), name="steps")(x)
        x = layers.Dense(u, activation="relu", kernel_initializer=init, name="project")(x)
        x = layers.Dropout(0.2, name="dropout")(x)
        x = layers.Bidirectional(layers.GRU(u, return_sequences=True), name="rnn")(x)
        logits = layers.Dense(len(self.charset) + 1, dtype="float32", name="logits")(x)  # CTC in float32
        return keras.Model(inputs, logits, name="crnn_ctc")

    def check_model(self):
        shape = tuple(self.model.output_shape)
        want = (None, self.hparams["width"] // 4, len(self.charset) + 1)
        if shape != want or tuple(self.model.input_shape[1:]) != (self.hparams["height"], self.hparams["width"],
                                                                   self.channels()):
            raise CaptchalabError(f"{self.info.get('path', 'the model')} does not fit its JSON: output "
                                  f"{shape}, expected {want} for charset {charset_name(self.charset)!r}")

    def init_from(self, other):
        """Every layer of the same shape; the logits column by column for shared characters."""
        if other.name == self.name and (other.hparams["height"], other.hparams["width"]) != \
                (self.hparams["height"], self.hparams["width"]):
            raise CaptchalabError("cannot start a ctc attacker from one with another input size")
        taken = super().init_from(other)
        kernel = other.model.get_layer("conv1").get_weights()[0]  # 3 x 3 x channels x filters
        if kernel.shape == (3, 3, 1, self.hparams["filters"]) and self.channels() == 3:
            # a grey model's first convolution sees the colour image's grey: every channel weighted
            # as the grey conversion weighs it, so the colour reader starts where the grey one is
            from ..pixels import GREY
            self.model.get_layer("conv1").set_weights([kernel * GREY[None, None, :, None]])
            taken = ", ".join(filter(None, (taken, "conv1 from grey")))
        return taken

    def train_step(self, optimizer):
        """One compiled training step: `step(images, targets, target_lengths) -> (mean CTC loss, 0)`
        (the CTC step does not decode its batch, so it counts no correct readings)."""
        import keras
        import tensorflow as tf
        h, model = self.hparams, self.model
        variables, steps = model.trainable_variables, h["width"] // 4

        @tf.function(input_signature=[tf.TensorSpec([None, h["height"], h["width"], self.channels()], tf.float32),
                                      tf.TensorSpec([None, MAX_LABEL], tf.int32), tf.TensorSpec([None], tf.int32)])
        def step(images, targets, target_lengths):
            with tf.GradientTape() as tape:
                logits = model(images, training=True)
                output_lengths = tf.fill([tf.shape(images)[0]], steps)
                loss = tf.reduce_mean(keras.ops.ctc_loss(targets, logits, target_lengths, output_lengths,
                                                         mask_index=0))
            optimizer.apply(tape.gradient(loss, variables), variables)
            return loss, None  # the CTC step does not decode its batch
        return step

    def fit(self, train, validation, settings, checkpoint, resume=False, on_epoch=None, unlabelled=None,
            fresh=None):
        """Train until the CAPTCHA-level validation score converges; with `unlabelled` (prepared
        images), in two stages: first on the labelled CAPTCHAs alone, then, from that model, also
        on the unlabelled ones a mean teacher (initialised from it) reads confidently
        (training.PseudoLabelling); with `fresh`, on the CAPTCHAs it draws for each epoch instead of
        `train`. Each stage is checkpointed, so `resume` goes on from either."""
        stage = None
        if unlabelled:
            stage = TeacherStage(checkpoint, resume)
            stage.first(lambda: self.fit(train, validation, settings, checkpoint, resume, on_epoch, fresh=fresh))
            checkpoint, resume = stage.checkpoint, stage.resume
        h = self.hparams
        x, labels, lengths = self._encode(train)
        batch_size = settings.batch_size or h["batch_size"]
        lr = learning_rate(settings, h["learning_rate"])
        if stage:
            stage.start(self.model)
            reader = type(self)(self.charset, self.hparams, stage.teacher)

        def epoch_set(rng):
            """This epoch's training set: the labelled CAPTCHAs (drawn anew with `fresh`), and the
            unlabelled ones the teacher reads confidently, under its reading."""
            labelled = self._encode(fresh(fresh_seed(rng))) if fresh else (x, labels, lengths)
            if stage is None:
                return labelled
            readings = reader.read_prepared(unlabelled)
            chosen = stage.pseudo.choose(readings, len(labelled[0]), self.charset, MAX_LABEL)
            stage.pseudo_count = len(chosen)
            if not chosen:
                return labelled
            pseudo_set = self._encode([(unlabelled[k], readings[k].text) for k in chosen])
            return tuple(np.concatenate(pair) for pair in zip(labelled, pseudo_set))

        def epoch_batches(rng):
            ex, elabels, elengths = epoch_set(rng)
            images = self.network_input(augment(ex, rng, h["augment"]))
            order = rng.permutation(len(ex))
            for first in range(0, len(order), batch_size):
                batch = order[first:first + batch_size]
                yield images[batch], elabels[batch], elengths[batch]
                if stage:
                    stage.update()

        # a small set (a few hundred real CAPTCHAs) gets a smaller budget that runs whole: 40,000 by
        # default, and at least 15 passes
        state = fit_converging(self, settings, train, validation, train_count=len(x), budget=h["budget"],
                               small_set_budget=max(h["budget"] // SMALL_SET_SHARE, 15 * len(x)),
                               batch_size=batch_size, rate=lr, make_step=self.train_step,
                               epoch_batches=epoch_batches, checkpoint=checkpoint, resume=resume, on_epoch=on_epoch,
                               warmup_epochs=1.0, stage=stage,
                               config={"count": len(x), "unlabelled": len(unlabelled or []), "fresh": fresh is not None})
        result = {**run_record(state), "batch_size": batch_size, "learning_rate": lr}
        return stage.notes(result, len(unlabelled), state["history"]) if stage else result

    def adversarial_objective(self, images, texts, boxes, targets=None):
        """A differentiable copy of `ctc_input` (grey, stretch, invert, resize, pad) for a padded
        batch of BGR images in 0-255, then the network and the CTC loss of each image's text (or of
        its target text): the padded clean batch, its mask of real pixels, and the constants
        `adversarial_loss` needs."""
        height, width, colour = self.hparams["height"], self.hparams["width"], self.hparams["colour"]
        x0, valid = pad_batch(images)
        b, hp, wp = x0.shape[:3]
        ry, rx = np.zeros((b, height, hp), np.float32), np.zeros((b, width, wp), np.float32)
        gain, offset, invert = (np.zeros(b, np.float32) for _ in range(3))
        pad = np.zeros((b, self.channels()), np.float32)  # the padding's grey, or colour
        padded = np.zeros((b, 1, width), np.float32)
        for k, image in enumerate(images):
            g, o, inv, my, mx, new_w, p = _objective_constants(image, height, width, colour)
            h, w = image.shape[:2]
            ry[k, :, :h], rx[k, :new_w, :w] = my, mx
            gain[k], offset[k], invert[k], pad[k] = g, o, inv, p
            padded[k, 0, new_w:] = 1
        labels = targets or texts
        bad = [t for t in labels if len(t) > MAX_LABEL or any(c not in self.charset for c in t)]
        if bad:
            raise CaptchalabError(f"the ctc model cannot express {bad[0]!r} (charset {charset_name(self.charset)!r})")
        encoded = np.zeros((b, MAX_LABEL), np.int32)
        for k, text in enumerate(labels):
            encoded[k, :len(text)] = [self.charset.index(c) + 1 for c in text]
        return x0, valid, (ry, rx, (gain != 1.0).astype(np.float32)[:, None, None], valid[..., 0],
                           invert[:, None, None], pad[:, None, None, :], padded[..., None], encoded,
                           np.array([len(t) for t in labels], np.int32))

    def adversarial_loss(self, x, constants):
        """The CTC loss of each image's text (untargeted: perturb() ascends it) or of its target
        text (perturb() descends it), through the differentiable copy of `ctc_input`. Measured
        stronger here than margins on the logits: a character spans several time steps, so
        flipping single steps rarely changes the text."""
        import keras
        import tensorflow as tf
        ry, rx, stretch, valid, invert, pad, padded, encoded, lengths = constants
        grey = tf.tensordot(x, tf.constant(GREY), axes=[[3], [0]])
        lo, hi = _percentiles(grey, valid, (1.0, 99.0))  # as ctc_input() computes them, on these pixels
        gain = tf.where(stretch > 0, 255.0 / tf.maximum(hi - lo, 1e-3), 1.0)
        offset = tf.where(stretch > 0, lo, 0.0)
        # every step on a channels-last picture: the grey, or with colour the BGR image itself
        picture = x if self.hparams["colour"] else grey[..., None]
        s = (picture - offset[..., None]) * gain[..., None]
        s = s + tf.stop_gradient(tf.clip_by_value(s, 0.0, 255.0) - s)  # clipped forward, not backward
        s = invert[..., None] * (255.0 - s) + (1.0 - invert[..., None]) * s
        r = tf.einsum("bhi,bijc,bwj->bhwc", ry, s, rx) + padded * pad
        logits = self.model(r / 255.0, training=False)
        steps = tf.fill([tf.shape(x)[0]], self.hparams["width"] // 4)
        return keras.ops.ctc_loss(encoded, logits, lengths, steps, mask_index=0)

    def _encode(self, examples):
        """Images as one array; labels as class indices padded with the blank (0)."""
        long = [t for _, t in examples if len(t) > MAX_LABEL]
        if long:
            raise CaptchalabError(f"ctc reads at most {MAX_LABEL} characters; label {long[0]!r} is longer")
        x = np.stack([p for p, _ in examples])
        labels = np.zeros((len(examples), MAX_LABEL), np.int32)
        for i, (_, text) in enumerate(examples):
            labels[i, :len(text)] = [self.charset.index(c) + 1 for c in text]
        return x, labels, np.array([len(t) for _, t in examples], np.int32)


def _percentiles(grey, valid, qs):
    """np.percentile's (linear) percentiles of each image's real pixels, differentiable (the
    gradient reaches the pixels that are the percentiles), as (B, 1, 1) tensors."""
    import tensorflow as tf
    b = tf.shape(grey)[0]
    flat = tf.reshape(grey, [b, -1])
    mask = tf.reshape(valid, [b, -1]) > 0
    ordered = tf.sort(tf.where(mask, flat, 1e9), axis=1)  # the real pixels first, in order
    n = tf.reduce_sum(tf.cast(mask, tf.float32), axis=1)
    out = []
    for q in qs:
        position = q / 100.0 * (n - 1.0)
        below = tf.cast(tf.floor(position), tf.int32)
        above = tf.minimum(below + 1, tf.cast(n, tf.int32) - 1)
        fraction = position - tf.floor(position)
        low = tf.gather(ordered, below[:, None], batch_dims=1)[:, 0]
        high = tf.gather(ordered, above[:, None], batch_dims=1)[:, 0]
        out.append((low + fraction * (high - low))[:, None, None])
    return out


def _objective_constants(image: np.ndarray, height: int, width: int, colour: bool = False):
    """What `ctc_input` decided for this clean image, as numbers: contrast gain and offset,
    whether it inverted, its resize matrices, its width after resizing and its padding grey (per
    channel: one, or three with `colour`)."""
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    lo, hi = np.percentile(grey, (1, 99))
    gain, offset = (255.0 / (hi - lo), lo) if hi - lo > 8 else (1.0, 0.0)
    stretched = np.clip((grey.astype(np.float32) - offset) * gain, 0, 255)
    invert = np.median(stretched) < 128
    h, w = grey.shape
    new_w = max(1, min(width, round(w * height / h)))
    prepared = ctc_input(image, height, width, colour)[:, :new_w]
    pad = np.median(prepared.reshape(height * new_w, -1), axis=0).astype(np.float32)
    return gain, offset, invert, resize_matrix(h, height), resize_matrix(w, new_w), new_w, pad

