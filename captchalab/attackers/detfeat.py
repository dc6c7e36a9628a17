"""Readers that start where published attacks on photo grids start, from a network pretrained on
millions of photographs: the COCO detector's trunk (NanoDet-m, captchalab.detector), kept frozen,
describes each network input, and a small head learns the prompt classes from those descriptions
through the shared loop, until it converges. Only the head trains, so an input's description is
computed once and kept: training costs one pass of the trunk over the training inputs, then
seconds an epoch.

`detfeat` reads a 3x3 grid tile by tile (each tile's three feature maps' mean and maximum, 768
numbers): the default reader of 3x3 grids drawn from a folder of photographs (`tiles=DIR`), where
a reader learning from nothing is the weak attacker again. A 4x4 scene is read whole, since an
object spans several squares: `detsquares` describes each square by the maps over it and over it
with half a square around (1,536 numbers) and learns from answers alone; `detareas` learns each
class's coverage map, as `areas` does, from the maps brought to the map's cells (grid4 keeps
`areas`, which measured stronger there: docs/results/grid4-photos.md). Their weights come from
`captchalab fetch-weights`; a model file holds the head alone and names the trunk it needs."""

from __future__ import annotations

import hashlib

import numpy as np

from ..detector.nanodet import framed
from ..kinds import MAP_CELLS
from ..model import forward
from .base import Param, register_attacker
from .grid import TileReader
from .squares import Areas, Squares
from .tile_inputs import TILE_PARAMS


class FrozenTrunk:
    """What the readers on the detector's frozen trunk share: each network input is described once
    (`describe`, cached by its bytes), the head's input scaling is fitted on the training
    descriptions, and the shared loop trains the head alone on them (nothing to augment)."""

    differentiable = False  # the frozen trunk is a graph, not a Keras model: no adversarial grids
    fresh_examples = False

    def describe(self, trunk, picture: np.ndarray) -> np.ndarray:
        """The head's input for one network input (uint8 BGR)."""
        raise NotImplementedError

    def described(self, inputs: np.ndarray) -> np.ndarray:
        """`describe` of each input, each computed once per reader."""
        from ..detector.nanodet import NanoDet

        if getattr(self, "_trunk", None) is None:
            self._trunk, self._cache = NanoDet(), {}
        out = []
        for picture in inputs:
            key = hashlib.sha1(picture.tobytes()).digest()
            if key not in self._cache:
                self._cache[key] = self.describe(self._trunk, picture)
            out.append(self._cache[key])
        return np.stack(out).astype(np.float32)

    def training_examples(self, examples):
        usable, (inputs, prompts, targets) = super().training_examples(examples)
        described = self.described(inputs)
        if not getattr(self, "_scaled", False):  # the first call is the training set's
            self.model.get_layer("scale").adapt(described)
            self._scaled = True
        return usable, (described, prompts, targets)

    def training_batch(self, inputs, targets, rng):
        return inputs, targets  # descriptions of fixed inputs: nothing to augment

    def head(self, seed, shape: tuple, name: str):
        """Scaling, one hidden layer and a score per class, over the last axis of `shape`."""
        import keras

        init = keras.initializers.HeNormal(seed=seed)
        x = inputs = keras.Input(shape, name="input")
        x = keras.layers.Normalization(name="scale")(x)  # fitted on the training descriptions
        x = keras.layers.Dense(self.hparams["hidden"], activation="relu", kernel_initializer=init, name="hidden")(x)
        x = keras.layers.Dropout(0.3, name="dropout")(x)
        outputs = keras.layers.Dense(len(self.classes), dtype="float32", name="classes")(x)
        return keras.Model(inputs, outputs, name=name)

    def input_logits(self, x: np.ndarray) -> np.ndarray:
        """The head's scores for float inputs in [0, 1] (as the grid readers pass them): per tile
        or square it scores, per class."""
        inputs = np.clip(np.round(x * 255.0), 0, 255).astype(np.uint8)
        run = forward(self.model)
        described = self.described(inputs)
        chunks = np.array_split(described, max(1, len(described) // 256))
        return np.concatenate([np.asarray(self.square_logits(run(d))) for d in chunks]).reshape(-1, len(self.classes))


# the readers' augmentations (a frozen trunk's descriptions of fixed inputs are not augmented) and
# the input size, which the trunk's own decides
UNUSED = ("tile", "augment", "colour", "outline", "randconv", "flips")
HIDDEN = Param("hidden", int, 256, 16, 4096, "units of the head's hidden layer")
# the whole-scene readers' square size in the trunk's input
SQUARE_TILE = Param("tile", int, 104, 16, 416, "side in pixels each square is given in the trunk's input (104: 416 in all)")  # fmt: skip


@register_attacker
class DetFeatures(FrozenTrunk, TileReader):
    name = "detfeat"
    description = (
        "A head on the pretrained COCO detector's frozen features (NanoDet-m), one sigmoid per class, "
        "trained on the tiles of image grids: the start for photographs."
    )
    params = tuple(p for p in TILE_PARAMS if p.name not in UNUSED) + (
        HIDDEN,
        Param("margin", float, 0.33, 0.0, 1.0, "a grey border around each tile, as a share of its side"),
        Param("tile", int, 96, 32, 416, "side in pixels each tile is cut to before the trunk describes it"),
        Param("flips", bool, False, help="also describe each tile's mirror image and average the scores (twice the trunk's work)"),
    )  # fmt: skip

    def build(self, seed):
        from ..detector.nanodet import FEATURE_SIZE

        return self.head(seed, (FEATURE_SIZE,), "detfeat")

    def describe(self, trunk, picture):
        return trunk.features(framed(picture, self.hparams["margin"]))

    def input_logits(self, x: np.ndarray) -> np.ndarray:
        return self.with_mirror(super().input_logits, x)


@register_attacker
class DetSquares(FrozenTrunk, Squares):
    name = "detsquares"
    description = (
        "A head on the pretrained COCO detector's frozen features (NanoDet-m) over a whole 4x4 scene, "
        "one sigmoid per square and class: each square described by the trunk's maps over it and "
        "over it with half a square around."
    )
    shifts = False
    params = tuple(p for p in Squares.params if p.name not in UNUSED) + (
        HIDDEN,
        SQUARE_TILE,
    )  # fmt: skip

    def build(self, seed):
        from ..detector.nanodet import FEATURE_SIZE

        return self.head(seed, (self.hparams["grid"] ** 2, 2 * FEATURE_SIZE), "detsquares")

    def describe(self, trunk, picture):
        from ..detector.nanodet import region_features

        maps, n = trunk.feature_maps(picture), self.hparams["grid"]
        around = 0.5 / n  # context: an object whose corner a square shows lies mostly beside it
        out = []
        for r in range(n):
            for c in range(n):
                y0, y1, x0, x1 = r / n, (r + 1) / n, c / n, (c + 1) / n
                grown = (max(0.0, y0 - around), min(1.0, y1 + around), max(0.0, x0 - around), min(1.0, x1 + around))
                out.append(np.concatenate([region_features(maps, (y0, y1, x0, x1)), region_features(maps, grown)]))
        return np.stack(out)


@register_attacker
class DetAreas(FrozenTrunk, Areas):
    name = "detareas"
    description = (
        "Estimates how much of each square the prompt's object covers, as areas does, from the pretrained "
        "COCO detector's frozen feature maps over the whole 4x4 scene (NanoDet-m), with a small "
        "convolutional head over them."
    )
    shifts = False
    params = tuple(p for p in Areas.params if p.name not in UNUSED) + (
        Param("hidden", int, 128, 16, 1024, "channels of the head's two convolutions"),
        SQUARE_TILE,
    )  # fmt: skip

    def cells(self) -> int:
        return self.hparams["grid"] * MAP_CELLS

    def build(self, seed):
        import keras
        from keras import layers

        from ..detector.nanodet import FEATURES

        n, h = self.cells(), self.hparams["hidden"]
        init = keras.initializers.HeNormal(seed=seed)
        x = inputs = keras.Input((n, n, 128 * len(FEATURES)), name="input")
        x = layers.Normalization(name="scale")(x)  # fitted on the training descriptions
        for k in (1, 2):  # each cell with its neighbours: an object's edge and extent
            x = layers.Conv2D(h, 3, padding="same", activation="relu", kernel_initializer=init, name=f"head{k}")(x)
        x = layers.Dropout(0.1, name="dropout")(x)
        # most cells show no object of a class: start every cell near none, as areas does
        outputs = layers.Conv2D(
            len(self.classes), 1, dtype="float32", name="classes", bias_initializer=keras.initializers.Constant(-4.0)
        )(x)
        return keras.Model(inputs, outputs, name="detareas")

    def describe(self, trunk, picture):
        # every map brought to the coverage map's cells (four to a square's side), side by side
        n = self.cells()
        return np.concatenate(
            [np.einsum("im,mkc,jk->ijc", area_weights(n, len(m)), m, area_weights(n, len(m))) for m in trunk.feature_maps(picture)],
            axis=-1,
        ).astype(np.float16)  # fmt: skip


def area_weights(n: int, m: int) -> np.ndarray:
    """n x m: how much of each of n equal cells each of m equal points covers (rows sum to 1):
    averages a map of m points down, or spreads it up, to n cells."""
    edges = np.linspace(0, 1, m + 1)
    cells = np.linspace(0, 1, n + 1)
    overlap = np.clip(
        np.minimum(cells[1:, None], edges[None, 1:]) - np.maximum(cells[:-1, None], edges[None, :-1]), 0, None
    )
    return overlap / overlap.sum(axis=1, keepdims=True)
