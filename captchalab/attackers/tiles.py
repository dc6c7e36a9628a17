"""The readers of one tile at a time (the grid readers' interface is in grid.py):

- `tiles`: the seed's network on 32x32 colour tiles (six 5x5 valid convolutions bring them to
  8x8x50, then FC 500 and one output per class), no pooling, as in the text pipeline;
- `tilecnn`: a stronger small CNN (three convolution blocks with batch normalisation and
  pooling, global average pooling), quicker to train.
"""
from __future__ import annotations

import numpy as np

from ..model import trunk
from .base import Param, register_attacker
from .grid import GRID_PARAMS, GridReader
from .tile_inputs import well_formed_tiles

# the readers of one tile at a time: they can learn each tile's class where a challenge records it
TILE_PARAMS = GRID_PARAMS + (
    Param("every_class", bool, True, help="where the training challenges record which class each tile shows "
          "(a generated grid3's challenges.json), train every class's score on every tile, not the prompt's "
          "alone (false: the answers alone, as for a labelled real dataset)"),
    Param("flips", bool, True, help="read each tile and its mirror image and average their scores (training "
          "mirrors tiles too; false: one read, half the network's work)"),
)


class TileReader(GridReader):
    """A reader of one tile at a time; where a training challenge records which class each tile
    shows (a generated grid3's `tiles`), it learns every class's score on every tile from it; from
    unlabelled challenges (`train captcha --unlabelled`) it learns the tiles a mean teacher reads
    with every class decided."""
    params = TILE_PARAMS
    truth = ("tiles",)
    semi_supervised = True
    ensembles = True  # its reading is the sigmoid of its network's logits: several networks' can be averaged

    def class_index(self, cls: str | None) -> int:
        return self.classes.index(cls) if cls in self.classes else -1

    def prepare(self, image, question):
        prepared = super().prepare(image, question)
        shown = question.get("truth", {}).get("tiles")
        if self.hparams["every_class"] and well_formed_tiles(shown, question["grid"] ** 2):  # training only
            prepared["tile_classes"] = [self.class_index(t["class"]) for t in shown]
            prepared["tile_clutter"] = [[self.class_index(c) for c in t.get("clutter", [])] for t in shown]
        return prepared

    def pseudo_examples(self, teacher, inputs, limit, threshold):
        # a tile joins where the teacher is sure of every class, shown or not, the surest first:
        # the whole tile then teaches every class's score
        p = 1 / (1 + np.exp(-teacher.input_logits(inputs.astype(np.float32) / 255.0)))
        sure = np.maximum(p, 1 - p).min(axis=1)
        chosen = np.flatnonzero(sure >= threshold)
        chosen = np.sort(chosen[np.argsort(-sure[chosen], kind="stable")][:limit])
        targets = (p[chosen] >= 0.5).astype(np.float32)[:, None, :]  # inputs x one tile x classes
        return inputs[chosen], p[chosen].argmax(axis=1).astype(np.int32), targets

    def with_mirror(self, read, x):
        """`read(x)`, averaged with `read` of the mirror images where `flips` asks for it."""
        return (read(x) + read(x[:, :, ::-1])) / 2 if self.hparams["flips"] else read(x)

    def input_logits(self, x):
        return self.with_mirror(super().input_logits, x)

    def differentiable_outputs(self, x):
        # a perturbation must fool the reading as it is made, mirror image included
        return self.with_mirror(super().differentiable_outputs, x)

    def training_notes(self, usable):
        # how many training challenges taught every class, not the prompt's alone
        return {"every_class": {"challenges": sum(p.get("tile_classes") is not None for p, _ in usable),
                                "of": len(usable)}}


@register_attacker
class Tiles(TileReader):
    name = "tiles"
    description = ("The seed's network on 32x32 colour tiles (six 5x5 valid convolutions to 8x8x50, FC 500, "
                   "one sigmoid per class): selects the tiles showing the prompt.")

    def build(self, seed):
        import keras
        init = keras.initializers.HeNormal(seed=seed)
        side = self.hparams["tile"]
        inputs = keras.Input((side, side, 3), name="input")
        outputs = keras.layers.Dense(len(self.classes), dtype="float32", name="classes")(trunk(inputs, init))
        return keras.Model(inputs, outputs, name="tiles")


@register_attacker
class TileCnn(TileReader):
    name = "tilecnn"
    description = ("A small CNN on 32x32 colour tiles (three convolution blocks with batch normalisation "
                   "and pooling, global average pooling, one sigmoid per class).")
    params = TILE_PARAMS + (Param("width", int, 1, 1, 8, "filters per convolution, as a multiple of 16, 32 and 64 "
                                  "(the three blocks)"),)

    def build(self, seed):
        import keras
        from keras import layers
        init = keras.initializers.HeNormal(seed=seed)
        side = self.hparams["tile"]
        x = inputs = keras.Input((side, side, 3), name="input")
        for block, filters in enumerate((16 * self.hparams["width"], 32 * self.hparams["width"],
                                         64 * self.hparams["width"]), start=1):
            for k in (1, 2):
                x = layers.Conv2D(filters, 3, padding="same", use_bias=False, kernel_initializer=init,
                                  name=f"block{block}_conv{k}")(x)
                x = layers.BatchNormalization(name=f"block{block}_bn{k}")(x)
                x = layers.ReLU(name=f"block{block}_relu{k}")(x)
            x = layers.MaxPooling2D(name=f"block{block}_pool")(x)
        x = layers.GlobalAveragePooling2D(name="pool")(x)
        x = layers.Dropout(0.2, name="dropout")(x)
        outputs = layers.Dense(len(self.classes), dtype="float32", name="classes")(x)
        return keras.Model(inputs, outputs, name="tilecnn")
