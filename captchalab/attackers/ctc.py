"""`ctc`: segmentation-free. The whole CAPTCHA, grey (or, with `colour=true`, in colour), resized
to a fixed height and padded to a fixed width, goes through a small convolution stack and a
bidirectional GRU that gives character logits for every time step (a few columns of the image
each). It is trained with Keras 3's CTC loss and decoded greedily, so it reads any length up to
the width allows and needs no length hint.

Keras 3's CTC convention: logits (not softmax), class 0 is the blank and the label padding, so
character i of the charset is class i + 1.
"""

from __future__ import annotations

import numpy as np

from ..charset import charset_name
from ..errors import CaptchalabError
from ..model import forward
from ..pixels import GREY, pad_batch
from ..registry import Param
from ..training import PseudoLabelling, TeacherStage, fit_converging, fresh_seed, learning_rate, run_record
from .base import Attacker, BaseRecipe, Reading, register_attacker, softmax
from .ctc_inputs import VIEWS, augment, ctc_input, greedy_decode, objective_constants, percentiles, views, vote

MAX_LABEL = 12
SMALL_SET_SHARE = 15  # too few CAPTCHAs held out to decide: the budget over this runs whole


@register_attacker
class Ctc(Attacker):
    name = "ctc"
    description = "Segmentation-free CRNN (convolutions + bidirectional GRU) trained with CTC."
    differentiable = True
    semi_supervised = True  # fit() takes unlabelled CAPTCHAs (pseudo-labels from a mean teacher)
    fresh_examples = True  # fit() can train on CAPTCHAs drawn anew every epoch
    # members fine-tuned from one starting model keep its alignment of time steps to characters, so
    # their per-step logits can be averaged (measured: docs/results/hard-text.md)
    ensembles = True
    # a mixture of the built-in styles at several strengths and lengths; a wider network its own
    base = BaseRecipe(shape=("filters", "rnn_units"))
    views = frozenset({"steps"})
    reading_params = ("tta",)  # `--model M.keras:tta=8` reads a trained model through 8 views
    output_layer, output_offset = "logits", 1  # column 0 is the blank
    params = (
        Param("height", int, 32, 16, 96, "input height in pixels (a multiple of 8)"),
        Param("width", int, 128, 32, 512, "input width in pixels (a multiple of 4); wider images are squeezed"),
        Param(
            "colour",
            bool,
            False,
            help="read the CAPTCHA in colour (three channels) instead of grey: lines "
            "or noise drawn in another hue than the characters stay apart from them",
        ),
        Param("filters", int, 16, 8, 128, "filters of the first convolution (then 2x, 4x, 4x)"),
        Param("rnn_units", int, 128, 16, 512, "GRU units per direction"),
        Param(
            "budget",
            int,
            600_000,
            1,
            10**9,
            "training examples seen at most (the run ends sooner when "
            "it converges); with under 300 CAPTCHAs held out, a fifteenth, run whole",
        ),
        Param("epochs", int, 1000, 1, 10**6, "passes over the training set at most"),
        Param("batch_size", int, 64, 1, 4096, "training batch size"),
        Param("learning_rate", float, 2e-3, 1e-6, 1.0, "peak learning rate from scratch (half when fine-tuning)"),
        Param(
            "patience",
            int,
            3,
            1,
            1000,
            "epochs without a validation gain before the learning rate is cut (after two cuts, the run ends)",
        ),
        Param("augment", float, 1.0, 0.0, 2.0, "strength of the training augmentation"),
        Param(
            "tta",
            int,
            1,
            1,
            len(VIEWS),
            "views of each CAPTCHA read (shifted and scaled a little) and voted on; 1: read it once",
        ),
        Param(
            "pseudo_per_labelled",
            float,
            PseudoLabelling.per_labelled,
            0.0,
            1000.0,
            "with unlabelled CAPTCHAs: at most this many pseudo-labels an epoch per labelled CAPTCHA",
        ),
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
        return {
            "height": self.hparams["height"],
            "width": self.hparams["width"],
            "channels": self.channels(),
            "time_steps": self.hparams["width"] // 4,
        }

    def probabilities(self, batch: list[np.ndarray]) -> np.ndarray:
        """Per time step, the probability of the blank (column 0) and of each character."""
        x = self.network_input(np.stack(batch))
        logits = np.concatenate([forward(self.model)(x[i : i + 512]).numpy() for i in range(0, len(x), 512)])
        return softmax(logits)

    def read_prepared(self, batch):
        k = self.hparams["tta"]
        if k == 1:
            return [Reading(text, conf) for text, conf in greedy_decode(self.probabilities(batch), self.charset)]
        read = greedy_decode(self.probabilities([v for image in batch for v in views(image, k)]), self.charset)
        return [Reading(*vote(read[i * k : (i + 1) * k])) for i in range(len(batch))]

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
        x = layers.Permute((2, 1, 3), name="columns")(x)  # (w/4, h/8, 4f)
        x = layers.Reshape((w // 4, (h // 8) * 4 * f), name="steps")(x)
        x = layers.Dense(u, activation="relu", kernel_initializer=init, name="project")(x)
        x = layers.Dropout(0.2, name="dropout")(x)
        x = layers.Bidirectional(layers.GRU(u, return_sequences=True), name="rnn")(x)
        logits = layers.Dense(len(self.charset) + 1, dtype="float32", name="logits")(x)  # CTC in float32
        return keras.Model(inputs, logits, name="crnn_ctc")

    def check_model(self):
        shape = tuple(self.model.output_shape)
        want = (None, self.hparams["width"] // 4, len(self.charset) + 1)
        if shape != want or tuple(self.model.input_shape[1:]) != (
            self.hparams["height"],
            self.hparams["width"],
            self.channels(),
        ):
            raise CaptchalabError(
                f"{self.info.get('path', 'the model')} does not fit its JSON: output "
                f"{shape}, expected {want} for charset {charset_name(self.charset)!r}"
            )

    def init_from(self, other):
        """Every layer of the same shape; the logits column by column for shared characters."""
        if other.name == self.name and (other.hparams["height"], other.hparams["width"]) != (
            self.hparams["height"],
            self.hparams["width"],
        ):
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

        @tf.function(
            input_signature=[
                tf.TensorSpec([None, h["height"], h["width"], self.channels()], tf.float32),
                tf.TensorSpec([None, MAX_LABEL], tf.int32),
                tf.TensorSpec([None], tf.int32),
            ]
        )
        def step(images, targets, target_lengths):
            with tf.GradientTape() as tape:
                logits = model(images, training=True)
                output_lengths = tf.fill([tf.shape(images)[0]], steps)
                loss = tf.reduce_mean(keras.ops.ctc_loss(targets, logits, target_lengths, output_lengths, mask_index=0))
            optimizer.apply(tape.gradient(loss, variables), variables)
            return loss, None  # the CTC step does not decode its batch

        return step

    def fit(self, train, validation, settings, checkpoint, resume=False, on_epoch=None, unlabelled=None, fresh=None):
        """Train until the CAPTCHA-level validation score converges; with `unlabelled` (prepared
        images), in two stages: first on the labelled CAPTCHAs alone, then, from that model, also
        on the unlabelled ones a mean teacher (initialised from it) reads confidently
        (training.PseudoLabelling); with `fresh`, on the CAPTCHAs it draws for each epoch instead of
        `train`. Each stage is checkpointed, so `resume` goes on from either."""
        stage = None
        if unlabelled:
            stage = TeacherStage(checkpoint, resume, PseudoLabelling(per_labelled=self.hparams["pseudo_per_labelled"]))
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
                batch = order[first : first + batch_size]
                yield images[batch], elabels[batch], elengths[batch]
                if stage:
                    stage.update()

        # a small set (a few hundred real CAPTCHAs) gets a smaller budget that runs whole: 40,000 by
        # default, and at least 15 passes
        state = fit_converging(
            self,
            settings,
            train,
            validation,
            train_count=len(x),
            budget=h["budget"],
            small_set_budget=max(h["budget"] // SMALL_SET_SHARE, 15 * len(x)),
            batch_size=batch_size,
            rate=lr,
            make_step=self.train_step,
            epoch_batches=epoch_batches,
            checkpoint=checkpoint,
            resume=resume,
            on_epoch=on_epoch,
            warmup_epochs=1.0,
            stage=stage,
            config={"count": len(x), "unlabelled": len(unlabelled or []), "fresh": fresh is not None},
        )
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
            g, o, inv, my, mx, new_w, p = objective_constants(image, height, width, colour)
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
            encoded[k, : len(text)] = [self.charset.index(c) + 1 for c in text]
        return (
            x0,
            valid,
            (
                ry,
                rx,
                (gain != 1.0).astype(np.float32)[:, None, None],
                valid[..., 0],
                invert[:, None, None],
                pad[:, None, None, :],
                padded[..., None],
                encoded,
                np.array([len(t) for t in labels], np.int32),
            ),
        )

    def adversarial_loss(self, x, constants):
        """The CTC loss of each image's text (untargeted: perturb() ascends it) or of its target
        text (perturb() descends it), through the differentiable copy of `ctc_input`. Measured
        stronger here than margins on the logits: a character spans several time steps, so
        flipping single steps rarely changes the text."""
        import keras
        import tensorflow as tf

        ry, rx, stretch, valid, invert, pad, padded, encoded, lengths = constants
        grey = tf.tensordot(x, tf.constant(GREY), axes=[[3], [0]])
        lo, hi = percentiles(grey, valid, (1.0, 99.0))  # as ctc_input() computes them, on these pixels
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
            labels[i, : len(text)] = [self.charset.index(c) + 1 for c in text]
        return x, labels, np.array([len(t) for _, t in examples], np.int32)
