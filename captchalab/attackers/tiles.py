"""The built-in readers of one tile at a time (their interfaces, GridReader and TileReader, are in
grid.py):

- `tiles`: the seed's network on 32x32 colour tiles (six 5x5 valid convolutions bring them to
  8x8x50, then FC 500 and one output per class), no pooling, as in the text pipeline;
- `tilecnn`: a stronger small CNN (three convolution blocks with batch normalisation and
  pooling, global average pooling), quicker to train.
"""

from __future__ import annotations

from ..model import trunk
from .base import Param, register_attacker
from .grid import TileReader
from .tile_inputs import TILE_PARAMS


@register_attacker
class Tiles(TileReader):
    name = "tiles"
    description = (
        "The seed's network on 32x32 colour tiles (six 5x5 valid convolutions to 8x8x50, FC 500, "
        "one sigmoid per class): selects the tiles showing the prompt."
    )

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
    description = (
        "A small CNN on 32x32 colour tiles (three convolution blocks with batch normalisation "
        "and pooling, global average pooling, one sigmoid per class)."
    )
    params = TILE_PARAMS + (
        Param("width", int, 1, 1, 8, "filters per convolution, as a multiple of 16, 32 and 64 (the three blocks)"),
    )

    def build(self, seed):
        import keras
        from keras import layers

        init = keras.initializers.HeNormal(seed=seed)
        side = self.hparams["tile"]
        x = inputs = keras.Input((side, side, 3), name="input")
        for block, filters in enumerate(
            (16 * self.hparams["width"], 32 * self.hparams["width"], 64 * self.hparams["width"]), start=1
        ):
            for k in (1, 2):
                x = layers.Conv2D(
                    filters, 3, padding="same", use_bias=False, kernel_initializer=init, name=f"block{block}_conv{k}"
                )(x)
                x = layers.BatchNormalization(name=f"block{block}_bn{k}")(x)
                x = layers.ReLU(name=f"block{block}_relu{k}")(x)
            x = layers.MaxPooling2D(name=f"block{block}_pool")(x)
        x = layers.GlobalAveragePooling2D(name="pool")(x)
        x = layers.Dropout(0.2, name="dropout")(x)
        outputs = layers.Dense(len(self.classes), dtype="float32", name="classes")(x)
        return keras.Model(inputs, outputs, name="tilecnn")
