"""The seed's "deep LeNet variant": six 5x5 valid convolutions, FC 500, FC 10.

No pooling, so every layer's feature maps stay visible (28→24→20→16→12→8→4).
Visualization and transfer learning address the layers by name.
"""
from __future__ import annotations

import keras

CONV_FILTERS = (20, 20, 50, 50, 50, 50)
CONV_LAYERS = tuple(f"conv{i}" for i in range(1, 7))
DENSE_LAYERS = ("fc1", "fc2")
WEIGHTED_LAYERS = CONV_LAYERS + DENSE_LAYERS
PARAMETER_COUNT = 628_750
INPUT_SHAPE = (28, 28, 1)


def build_model(seed: int | None = None) -> keras.Model:
    """Build the network with He-normal initial weights (deep ReLU stacks need them)."""
    init = keras.initializers.HeNormal(seed=seed)
    inputs = keras.Input(shape=INPUT_SHAPE, name="input")
    x = inputs
    for name, filters in zip(CONV_LAYERS, CONV_FILTERS):
        x = keras.layers.Conv2D(filters, 5, padding="valid", activation="relu",
                                kernel_initializer=init, name=name)(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(500, activation="relu", kernel_initializer=init, name="fc1")(x)
    outputs = keras.layers.Dense(10, activation="softmax", name="fc2")(x)
    return keras.Model(inputs, outputs, name="deep_lenet")


def missing_layers(model: keras.Model) -> list[str]:
    """Names of the seed's weighted layers that `model` lacks or holds in the wrong shape."""
    expected = build_model()
    missing = []
    for name in WEIGHTED_LAYERS:
        try:
            layer = model.get_layer(name)
        except ValueError:
            missing.append(name)
            continue
        want = [tuple(w.shape) for w in expected.get_layer(name).weights]
        have = [tuple(w.shape) for w in layer.weights]
        if want != have:
            missing.append(f"{name} (shape {have}, expected {want})")
    return missing


def load_model(path) -> keras.Model:
    """Load a .keras model safely (no arbitrary code) and check it is the seed's network."""
    from pathlib import Path

    from .errors import CaptchalabError
    path = Path(path)
    if not path.is_file():
        raise CaptchalabError(f"model file {path} does not exist")
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # zip, HDF5 and deserialisation failures all mean "not a model"
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CaptchalabError(f"{path}: not a loadable Keras model ({first_line[:200]})") from None
    missing = missing_layers(model)
    if missing:
        raise CaptchalabError(f"{path} is not the deep LeNet network: missing {', '.join(missing)}")
    return model
