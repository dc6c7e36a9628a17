"""The seed's "deep LeNet variant": six 5x5 valid convolutions, FC 500, FC N (N = the size of
the character set; 10 for digits, which is the seed's network exactly: 628,750 parameters).

No pooling, so every layer's feature maps stay visible (28→24→20→16→12→8→4).
Visualization and transfer learning address the layers by name.
"""
from __future__ import annotations

import keras

from .errors import CaptchalabError

CONV_FILTERS = (20, 20, 50, 50, 50, 50)
CONV_LAYERS = tuple(f"conv{i}" for i in range(1, 7))
DENSE_LAYERS = ("fc1", "fc2")
WEIGHTED_LAYERS = CONV_LAYERS + DENSE_LAYERS
PARAMETER_COUNT = 628_750  # with 10 outputs
INPUT_SHAPE = (28, 28, 1)


def build_model(classes: int = 10, seed: int | None = None) -> keras.Model:
    """Build the network with He-normal initial weights (deep ReLU stacks need them)."""
    init = keras.initializers.HeNormal(seed=seed)
    inputs = keras.Input(shape=INPUT_SHAPE, name="input")
    x = inputs
    for name, filters in zip(CONV_LAYERS, CONV_FILTERS):
        x = keras.layers.Conv2D(filters, 5, padding="valid", activation="relu",
                                kernel_initializer=init, name=name)(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(500, activation="relu", kernel_initializer=init, name="fc1")(x)
    # the output layer computes in float32 whatever the training precision (mixed precision rule)
    outputs = keras.layers.Dense(classes, activation="softmax", dtype="float32", name="fc2")(x)
    return keras.Model(inputs, outputs, name="deep_lenet")


def missing_layers(model: keras.Model, classes: int | None = None) -> list[str]:
    """Names of the seed's weighted layers that `model` lacks or holds in the wrong shape
    (fc2 may have any number of outputs unless `classes` is given)."""
    expected = build_model(classes or 10)
    missing = []
    for name in WEIGHTED_LAYERS:
        try:
            layer = model.get_layer(name)
        except ValueError:
            missing.append(name)
            continue
        want = [tuple(w.shape) for w in expected.get_layer(name).weights]
        have = [tuple(w.shape) for w in layer.weights]
        if name == "fc2" and classes is None and len(have) == 2 and have[0][:1] == (500,):
            continue
        if want != have:
            missing.append(f"{name} (shape {have}, expected {want})")
    return missing


def check_network(model: keras.Model, classes: int, where) -> None:
    """Refuse a model that is not the seed's network with `classes` outputs."""
    missing = missing_layers(model, classes)
    if missing:
        raise CaptchalabError(f"{where} is not the deep LeNet network for {classes} characters: "
                              f"missing {', '.join(missing)}")


def load_model(path) -> keras.Model:
    """The seed's network (any number of outputs) from a .keras file, loaded safely."""
    from .attackers.base import load_keras_model
    model = load_keras_model(path)
    missing = missing_layers(model)
    if missing:
        raise CaptchalabError(f"{path} is not the deep LeNet network: missing {', '.join(missing)}")
    return model
