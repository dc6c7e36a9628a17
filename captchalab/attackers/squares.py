"""Readers of a 4x4 scene as a whole (kind "grid"): `squares`, a fully convolutional network with
one score per square and class (a square is read with its neighbours, where the rest of an object
whose corner it shows lies), and `areas`, which learns each class's coverage map (`truth`)."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np

from ..errors import CaptchalabError
from ..kinds import MAP_CELLS
from .base import Param, register_attacker
from .grid import GRID_PARAMS, GridReader
from .tile_inputs import coverage_threshold


@register_attacker
class Squares(GridReader):
    name = "squares"
    description = (
        "A fully convolutional network over the whole grid (4x4: 128x128 pixels), one sigmoid per "
        "square and class: each square is read with its neighbours."
    )
    # its examples are whole challenges, not tiles: its own budget, batch and input size
    params = tuple(p for p in GRID_PARAMS if p.name not in ("tile", "budget", "batch_size")) + (
        Param("tile", int, 32, 16, 64, "side in pixels each square is given in the network's input (16, 32 or 64)"),
        Param(
            "budget",
            int,
            200_000,
            1,
            10**9,
            "training challenges seen at most (the run ends sooner when the validation score stops improving)",
        ),
        Param("batch_size", int, 32, 1, 4096, "challenges per training batch"),
        Param("grid", int, 4, 2, 8, "squares per side of the grids it reads"),
    )

    def grids(self):
        return (self.hparams["grid"],)

    def network_inputs(self, image, grid):
        if grid != self.hparams["grid"]:
            raise CaptchalabError(
                f"{self.name} reads {self.hparams['grid']}x{self.hparams['grid']} grids "
                f"(grid={self.hparams['grid']}); this challenge is {grid}x{grid}"
            )
        side = grid * self.hparams["tile"]
        return cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA)[None]

    def input_boxes(self, h, w, grid):
        return [(0, h, 0, w)]

    def geometry(self):
        side = self.hparams["grid"] * self.hparams["tile"]
        return {"input": [side, side, 3], "grid": self.hparams["grid"], "classes": len(self.classes)}

    def encoder(self, seed):
        """The network up to one cell a square: its input, that map, the map each block saw before
        its pooling (finest first), and the convolution block it is built of (a 3x3 convolution,
        batch normalisation, ReLU), for a reader that builds on it."""
        import keras
        from keras import layers

        h = self.hparams
        if h["tile"] not in (16, 32, 64):
            raise CaptchalabError(f"{self.name}: tile must be 16, 32 or 64, got {h['tile']}")
        init = keras.initializers.HeNormal(seed=seed)

        def conv(x, filters, name, strides=1):
            x = layers.Conv2D(
                filters,
                3,
                strides=strides,
                padding="same",
                use_bias=False,
                kernel_initializer=init,
                name=f"{name}_conv",
            )(x)
            return layers.ReLU(name=f"{name}_relu")(layers.BatchNormalization(name=f"{name}_bn")(x))

        side = h["grid"] * h["tile"]
        x = inputs = keras.Input((side, side, 3), name="input")
        # a strided stem, then blocks that halve the map until one cell is one square; the receptive
        # field grows past a square's borders, which is the point
        x = conv(x, 16, "stem", strides=2)
        skips = []
        for block, filters in enumerate((24, 48, 96, 128, 128)[: int(np.log2(h["tile"])) - 1], start=1):
            x = conv(conv(x, filters, f"block{block}a"), filters, f"block{block}b")
            skips.append(x)
            x = layers.MaxPooling2D(name=f"block{block}_pool")(x)
        x = conv(x, 128, "context")  # one more look at the neighbouring squares
        return inputs, x, skips, conv

    def build(self, seed):
        import keras
        from keras import layers

        inputs, x, _, _ = self.encoder(seed)
        x = layers.Dropout(0.2, name="dropout")(x)
        outputs = layers.Conv2D(len(self.classes), 1, dtype="float32", name="classes")(x)
        return keras.Model(inputs, outputs, name="squares")


@register_attacker
class Areas(Squares):
    name = "areas"
    description = (
        "Estimates how much of each square the prompt's object covers, from a map of its coverage at "
        "four cells to a square's side (a fully convolutional network over the whole 4x4 scene, encoder "
        "and decoder), and selects the squares covered as much as the training answers count."
    )
    truth = ("coverage", "coverage_map")  # learnt from what a generated grid4 records, not from answers alone
    # its score is an estimate of the coverage the answer is defined by, so it selects where that
    # estimate reaches the answer's threshold; weighing its soft scores with the answer sizes added
    # and dropped squares near the line (docs/grids.md: 81.5% against 85.3% of 2,000 fresh grid4 challenges)
    params = tuple(replace(p, default=False) if p.name == "sizes" else p for p in Squares.params)
    # a shift moves the object across the squares' borders, so the recorded map no longer fits
    shifts = False
    sharpness = 3.0  # a square's score: this times the log of its estimated coverage over the threshold

    def prepare(self, image, question):
        prepared = super().prepare(image, question)
        truth, side = question.get("truth", {}), question["grid"]
        if (
            len(truth.get("coverage") or ()) == side**2
            and len(truth.get("coverage_map") or ()) == (side * MAP_CELLS) ** 2
        ):  # training only
            prepared["coverage"] = np.asarray(truth["coverage"], np.float32)
            prepared["coverage_map"] = np.asarray(truth["coverage_map"], np.float32)
        return prepared

    def check_model(self):
        super().check_model()
        if not self.info.get("coverage_threshold"):
            raise CaptchalabError(
                f"{self.info.get('path', 'this model')}: an areas model records no coverage_threshold"
            )

    def training_examples(self, examples):
        # the first call (the training set) fixes the threshold; fresh draws of the design keep it
        if "coverage_threshold" not in self.info:
            self.info["coverage_threshold"] = coverage_threshold(examples)
        threshold = self.info["coverage_threshold"]
        usable = [(p, t) for p, t in examples if p["prompt"] >= 0 and p.get("coverage_map") is not None]
        if threshold is None or not usable:
            raise CaptchalabError(
                "areas learns from the coverage map generated grid4 challenges record "
                "(challenges.json, coverage_map), and these have none or answers it does not "
                "explain: train squares, which learns from answers alone"
            )
        inputs = np.concatenate([p["inputs"] for p, _ in usable])
        prompts = np.array([p["prompt"] for p, _ in usable], np.int32)
        return usable, (inputs, prompts, np.stack([p["coverage_map"] for p, _ in usable]))

    def training_notes(self, usable):
        return {"coverage_threshold": self.info["coverage_threshold"]}

    def square_shares(self, cells):
        """Per input, each square's estimated coverage by every class, from the cell maps' logits
        (inputs x cells down x cells across x classes)."""
        import tensorflow as tf

        return tf.nn.avg_pool2d(tf.sigmoid(cells), MAP_CELLS, MAP_CELLS, "VALID")

    def square_logits(self, outputs):
        import tensorflow as tf

        shares = self.square_shares(outputs)
        logits = self.sharpness * tf.math.log(tf.maximum(shares, 1e-4) / self.info["coverage_threshold"])
        return tf.reshape(logits, [tf.shape(outputs)[0], -1, len(self.classes)])

    def training_loss(self, outputs, prompt, target):
        """Each cell's estimated coverage of the prompt's class against the recorded one (a
        cross-entropy with the share as target), and, per input, the share of squares on the
        right side of the threshold."""
        import tensorflow as tf

        n = self.hparams["grid"] * MAP_CELLS
        cells = tf.reshape(outputs, [tf.shape(outputs)[0], n * n, len(self.classes)])
        chosen = tf.gather(cells, prompt, axis=2, batch_dims=1)
        loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(target, chosen))
        threshold = self.info["coverage_threshold"]
        estimated = self.square_shares(tf.reshape(chosen, [-1, n, n, 1]))
        true = tf.nn.avg_pool2d(tf.reshape(target, [-1, n, n, 1]), MAP_CELLS, MAP_CELLS, "VALID")
        right = tf.cast(tf.equal(estimated >= threshold, true >= threshold), tf.float32)
        return loss, tf.reduce_mean(tf.reshape(right, [tf.shape(outputs)[0], -1]), axis=1)

    def build(self, seed):
        import keras
        from keras import layers

        # down to one cell a square, squares' encoder, for the context an object's extent needs;
        # then up to MAP_CELLS cells a square, with the finer maps beside, for its edges
        inputs, x, skips, conv = self.encoder(seed)
        for up, (skip, filters) in enumerate(zip((skips[-1], skips[-2]), (96, 64)), start=1):
            x = layers.Concatenate(name=f"up{up}_join")([layers.UpSampling2D(name=f"up{up}")(x), skip])
            x = conv(x, filters, f"up{up}")
        x = layers.Dropout(0.1, name="dropout")(x)
        # most cells show no object of a class: start every cell near none (2%), not at one half,
        # which would select every square until training undid it
        outputs = layers.Conv2D(
            len(self.classes), 1, dtype="float32", name="classes", bias_initializer=keras.initializers.Constant(-4.0)
        )(x)
        return keras.Model(inputs, outputs, name="areas")
