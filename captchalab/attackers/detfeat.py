"""`detfeat`: a tile reader that starts where published attacks on photo grids start, from a
network pretrained on millions of photographs: the COCO detector's trunk (NanoDet-m,
captchalab.detector), kept frozen, describes each tile (its three feature maps' mean and maximum,
768 numbers), and a small head learns the prompt classes from those descriptions through the
shared loop, until it converges. Only the head trains, so a tile's description is computed once
and kept: training costs one pass of the trunk over the training tiles, then seconds an epoch.

It is the default reader of a grid style drawing from a folder of photographs (`tiles=DIR`): a
reader learning from nothing there is the weak attacker again. Its weights come from
`captchalab fetch-weights`; the model file holds the head alone and names the trunk it needs.
"""

from __future__ import annotations

import hashlib

import numpy as np

from ..detector.nanodet import framed
from ..model import forward
from .base import Param, register_attacker
from .grid import TileReader
from .tile_inputs import TILE_PARAMS


@register_attacker
class DetFeatures(TileReader):
    name = "detfeat"
    description = (
        "A head on the pretrained COCO detector's frozen features (NanoDet-m), one sigmoid per class, "
        "trained on the tiles of image grids: the start for photographs."
    )
    differentiable = False  # the frozen trunk is a graph, not a Keras model: no adversarial grids
    fresh_examples = False
    params = tuple(
        p for p in TILE_PARAMS if p.name not in ("tile", "augment", "colour", "outline", "randconv", "flips")
    ) + (
        Param("tile", int, 96, 32, 416, "side in pixels each tile is cut to before the trunk describes it"),
        Param("margin", float, 0.33, 0.0, 1.0, "a grey border around each tile, as a share of its side"),
        Param("hidden", int, 256, 16, 4096, "units of the head's hidden layer"),
        Param("flips", bool, False, help="also describe each tile's mirror image and average the scores (twice the trunk's work)"),
    )  # fmt: skip

    def __init__(self, charset: str = "", hparams: dict | None = None, model=None, info: dict | None = None):
        super().__init__(charset, hparams, model, info)
        self._described: dict[bytes, np.ndarray] = {}

    def build(self, seed):
        import keras

        from ..detector.nanodet import FEATURE_SIZE

        init = keras.initializers.HeNormal(seed=seed)
        x = inputs = keras.Input((FEATURE_SIZE,), name="input")
        x = keras.layers.Normalization(name="scale")(x)  # fitted on the training descriptions
        x = keras.layers.Dense(self.hparams["hidden"], activation="relu", kernel_initializer=init, name="hidden")(x)
        x = keras.layers.Dropout(0.3, name="dropout")(x)
        outputs = keras.layers.Dense(len(self.classes), dtype="float32", name="classes")(x)
        return keras.Model(inputs, outputs, name="detfeat")

    def describe_tiles(self, tiles: np.ndarray) -> np.ndarray:
        """The frozen trunk's description of each uint8 tile, each computed once per reader."""
        from ..detector.nanodet import NanoDet

        if getattr(self, "_trunk", None) is None:
            self._trunk = NanoDet()
        out = []
        for tile in tiles:
            key = hashlib.sha1(tile.tobytes()).digest()
            if key not in self._described:
                self._described[key] = self._trunk.features(framed(tile, self.hparams["margin"]))
            out.append(self._described[key])
        return np.stack(out).astype(np.float32)

    def training_examples(self, examples):
        usable, (inputs, prompts, targets) = super().training_examples(examples)
        described = self.describe_tiles(inputs)
        if not getattr(self, "_scaled", False):  # the first call is the training set's
            self.model.get_layer("scale").adapt(described)  # its means and spreads, before the first step
            self._scaled = True
        return usable, (described, prompts, targets)

    def training_batch(self, inputs, targets, rng):
        return inputs, targets  # descriptions of fixed tiles: nothing to augment

    def input_logits(self, x: np.ndarray) -> np.ndarray:
        """Per tile, per class scores for float tiles in [0, 1] (as the grid readers pass them)."""
        tiles = np.clip(np.round(x * 255.0), 0, 255).astype(np.uint8)
        run = forward(self.model)
        read = lambda t: np.concatenate(
            [np.asarray(run(d)) for d in np.array_split(self.describe_tiles(t), max(1, len(t) // 512))]
        )
        return (read(tiles) + read(tiles[:, :, ::-1])) / 2 if self.hparams["flips"] else read(tiles)
