"""The seed's "deep LeNet variant": six 5x5 valid convolutions, FC 500, FC N (N = the size of
the character set; 10 for digits, which is the seed's network exactly: 628,750 parameters),
and how it is loaded, run and trained on 28x28 crops (MNIST, rendered characters, CAPTCHA
crops) through the shared loop.

No pooling, so every layer's feature maps stay visible (28→24→20→16→12→8→4).
Visualization and transfer learning address the layers by name.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import cv2
import numpy as np

from .charset import DIGITS
from .errors import CaptchalabError
from .training import Run, choose_optimizer, cosine_optimizer, train_recipe, train_until_converged

if TYPE_CHECKING:  # Keras itself is imported where it is used: worker processes never need it
    import keras

CONV_FILTERS = (20, 20, 50, 50, 50, 50)
CONV_LAYERS = tuple(f"conv{i}" for i in range(1, 7))
DENSE_LAYERS = ("fc1", "fc2")
WEIGHTED_LAYERS = CONV_LAYERS + DENSE_LAYERS
PARAMETER_COUNT = 628_750  # with 10 outputs
INPUT_SHAPE = (28, 28, 1)


def build_model(classes: int = 10, seed: int | None = None) -> keras.Model:
    """Build the network with He-normal initial weights (deep ReLU stacks need them)."""
    import keras  # here, not at the top: worker processes import this module and never need TensorFlow

    init = keras.initializers.HeNormal(seed=seed)
    inputs = keras.Input(shape=INPUT_SHAPE, name="input")
    # the output layer computes in float32 whatever the training precision (mixed precision rule)
    outputs = keras.layers.Dense(classes, activation="softmax", dtype="float32", name="fc2")(trunk(inputs, init))
    return keras.Model(inputs, outputs, name="deep_lenet")


def trunk(x, init):
    """The seed's layers up to fc1 on any input: six 5x5 valid ReLU convolutions (20, 20, 50, 50,
    50, 50 maps), flattened, FC 500 (also the tile readers' network, on colour tiles)."""
    import keras

    for name, filters in zip(CONV_LAYERS, CONV_FILTERS):
        x = keras.layers.Conv2D(filters, 5, padding="valid", activation="relu", kernel_initializer=init, name=name)(x)
    x = keras.layers.Flatten(name="flatten")(x)
    return keras.layers.Dense(500, activation="relu", kernel_initializer=init, name="fc1")(x)


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
        raise CaptchalabError(
            f"{where} is not the deep LeNet network for {classes} characters: missing {', '.join(missing)}"
        )


def load_keras_model(path: Path):
    """Load a .keras file safely (no arbitrary code), or a one-line error."""
    path = Path(path)
    if not path.is_file():
        raise CaptchalabError(f"model file {path} does not exist")
    import keras

    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # zip, HDF5 and deserialisation failures all mean "not a model"
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CaptchalabError(f"{path}: not a loadable Keras model ({first_line[:200]})") from None


def load_model(path) -> keras.Model:
    """The seed's network (any number of outputs) from a .keras file, loaded safely."""
    model = load_keras_model(path)
    missing = missing_layers(model)
    if missing:
        raise CaptchalabError(f"{path} is not the deep LeNet network: missing {', '.join(missing)}")
    return model


# -- training on 28x28 crops ---------------------------------------------------------------


@dataclass
class TrainConfig:
    """Training settings of the seed's network (MNIST, characters, CAPTCHA crops). The defaults
    are the `train mnist` recipe: 7 epochs on every training image, the last weights kept (the
    cosine schedule ends at zero, so the last epoch is the settled one), mixed precision where
    the CPU computes bfloat16 natively: 99.43-99.49% over three seeds, about two minutes here."""

    epochs: int = 7
    batch_size: int = 128
    seed: int = 0
    learning_rate: float = 3e-3
    warmup_epochs: float = 0.3
    label_smoothing: float = 0.1
    validation_count: int = 0  # images held out to choose the best epoch (0: keep the last)
    patience: int = 3  # epochs without validation gain before stopping early
    max_rotate: float = 10.0  # degrees
    max_shift: float = 2.0  # pixels
    max_scale: float = 0.1  # relative
    max_shear: float = 0.0  # horizontal shear factor
    elastic: float = 0.0  # elastic distortion strength (pixels of displacement)
    dropout: float = 0.0  # dropout on fc1's output while training (not a layer of the model)

    def check(self) -> None:
        if self.epochs < 1:
            raise CaptchalabError(f"`epochs` must be at least 1, got {self.epochs}")
        if self.batch_size < 1:
            raise CaptchalabError(f"`batch_size` must be at least 1, got {self.batch_size}")


def augment(images: np.ndarray, rng: np.random.Generator, config: TrainConfig) -> np.ndarray:
    """Random rotation, scale, shear, shift (and elastic distortion) of 28x28 uint8 images."""
    n = len(images)
    angles = rng.uniform(-config.max_rotate, config.max_rotate, n)
    scales = rng.uniform(1 - config.max_scale, 1 + config.max_scale, n)
    shears = rng.uniform(-config.max_shear, config.max_shear, n)
    shifts = rng.uniform(-config.max_shift, config.max_shift, (n, 2))
    out = np.empty_like(images)
    for i in range(n):
        m = cv2.getRotationMatrix2D((13.5, 13.5), angles[i], scales[i])
        m[0, 1] += shears[i]
        m[0, 2] += shifts[i, 0] - shears[i] * 13.5
        m[1, 2] += shifts[i, 1]
        out[i] = cv2.warpAffine(images[i], m, (28, 28), flags=cv2.INTER_LINEAR, borderValue=0)
    if config.elastic > 0:
        out = elastic(out, rng, config.elastic)
    return out


def elastic(images: np.ndarray, rng: np.random.Generator, alpha: float, sigma: float = 4.0) -> np.ndarray:
    """Simard-style elastic distortion: a smooth random displacement field per image."""
    n = len(images)
    field = rng.uniform(-1, 1, (n, 2, 28, 28)).astype(np.float32)
    ys, xs = np.mgrid[0:28, 0:28].astype(np.float32)
    out = np.empty_like(images)
    for i in range(n):
        dx = cv2.GaussianBlur(field[i, 0], (0, 0), sigma) * alpha * sigma
        dy = cv2.GaussianBlur(field[i, 1], (0, 0), sigma) * alpha * sigma
        out[i] = cv2.remap(images[i], xs + dx, ys + dy, cv2.INTER_LINEAR, borderValue=0)
    return out


def to_input(images: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) -> float32 (N, 28, 28, 1) in [0, 1], the network's input."""
    return (images.astype(np.float32) / 255.0)[..., None]


def make_train_step(model, optimizer, label_smoothing: float, dropout: float = 0.0):
    """One compiled training step of the seed's network: cross-entropy with label smoothing on
    the logits (fc2 before its softmax, so a saturated softmax cannot stall the gradient).

    A plain tf.function step, not `model.fit`: measured faster here (benchmarks/train_speed.py)."""
    import keras
    import tensorflow as tf

    variables = model.trainable_variables
    fc2 = model.get_layer("fc2")
    classes = fc2.units
    features = keras.Model(model.input, model.get_layer("fc1").output)  # shares the model's weights

    @tf.function(input_signature=[tf.TensorSpec([None, 28, 28, 1], tf.float32), tf.TensorSpec([None], tf.int32)])
    def step(x, y):
        with tf.GradientTape() as tape:
            h = tf.cast(features(x, training=True), tf.float32)  # bfloat16 under mixed precision
            if dropout:
                h = tf.nn.dropout(h, dropout)
            logits = tf.matmul(h, fc2.kernel) + fc2.bias
            target = tf.one_hot(y, classes) * (1 - label_smoothing) + label_smoothing / classes
            loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(target, logits))
        optimizer.apply(tape.gradient(loss, variables), variables)
        correct = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(logits, 1, output_type=tf.int32), y), tf.float32))
        return loss, correct

    return step


def predict_proba(model, images: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """Class probabilities for uint8 28x28 crops, one forward call per chunk."""
    classes = model.output_shape[-1]
    out = np.zeros((len(images), classes), np.float32)
    run = forward(model)
    for start in range(0, len(images), batch_size):
        part = images[start : start + batch_size]
        out[start : start + len(part)] = run(to_input(part)).numpy()
    return out


def evaluate(model, images: np.ndarray, labels: np.ndarray, charset: str = DIGITS) -> dict:
    """Accuracy, per-character accuracy and the confusion matrix (rows: truth, columns: guess)."""
    n = len(charset)
    pred = predict_proba(model, images).argmax(axis=1) if len(images) else np.zeros(0, int)
    confusion = np.zeros((n, n), np.int64)
    np.add.at(confusion, (labels.astype(int), pred), 1)
    per_class = {
        c: (float(confusion[i, i] / confusion[i].sum()) if confusion[i].sum() else None) for i, c in enumerate(charset)
    }
    return {
        "accuracy": float((pred == labels).mean()) if len(labels) else 0.0,
        "per_class_accuracy": per_class,
        "confusion_matrix": confusion.tolist(),
    }


def split_validation(x: np.ndarray, y: np.ndarray, count: int, seed: int):
    """Hold out `count` random training images for validation (never the test set); 0 keeps all."""
    train, val = held_out(len(x), min(count, len(x) // 5), seed)
    return x[train], y[train], x[val], y[val]


def train_network(
    model,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    config: TrainConfig,
    checkpoint: Path,
    resume: bool = False,
    verbose: int = 0,
    on_epoch: Callable[[int, dict], None] | None = None,
    stopping=None,
    validate: Callable[[], float | None] | None = None,
    train_score: Callable[[], float | None] | None = None,
    validation_count: int | None = None,
) -> dict:
    """Train the seed's network on 28x28 crops with per-epoch augmentation: a fixed recipe of
    `config.epochs` (cosine schedule), or with `stopping` until it converges, judged by
    `validate()` (a segment attacker passes its CAPTCHA-level score; the default is the share of
    validation crops read right)."""
    config.check()
    steps = math.ceil(len(x_train) / config.batch_size)
    if stopping is None:
        optimizer = cosine_optimizer(config.learning_rate, config.warmup_epochs, config.epochs, steps)
    else:
        validation_count = len(x_val) if validation_count is None else validation_count
        optimizer = choose_optimizer(config.learning_rate, stopping, len(x_train), config.batch_size, validation_count)
    step = make_train_step(model, optimizer, config.label_smoothing, config.dropout)
    y_train = y_train.astype(np.int32)

    def epoch_batches(rng):
        x_epoch = to_input(augment(x_train, rng, config))
        order = rng.permutation(len(x_train))
        for first in range(0, len(order), config.batch_size):
            batch = order[first : first + config.batch_size]
            yield x_epoch[batch], y_train[batch]

    def crop_accuracy():
        return float((predict_proba(model, x_val).argmax(axis=1) == y_val).mean()) if len(x_val) else None

    run_config = asdict(config) if stopping is None else {**asdict(config), "stopping": asdict(stopping)}
    run = Run(
        model,
        optimizer,
        config.seed,
        len(x_train),
        epoch_batches,
        step,
        validate or crop_accuracy,
        checkpoint,
        run_config,
        resume,
        verbose,
        on_epoch,
    )
    if stopping is None:
        return train_recipe(run, config.epochs, config.patience, train_score)
    return train_until_converged(run, stopping, validation_count, train_score)


def forward(model) -> Callable:
    """The model's compiled inference pass, made once per model and kept on it: a function made
    anew for every call would be traced anew (TensorFlow's retracing warnings)."""
    import tensorflow as tf

    run = getattr(model, "_captchalab_forward", None)
    if run is None:  # one signature for every batch size: traced once
        run = tf.function(
            lambda x: model(x, training=False),
            autograph=False,  # no Python control flow to convert
            input_signature=[tf.TensorSpec([None, *model.input_shape[1:]], tf.float32)],
        )
        object.__setattr__(model, "_captchalab_forward", run)  # not a tracked Keras attribute
    return run


def held_out(count: int, hold: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of `count` items split into (kept for training, `hold` held out), at random from
    `seed`: the one split of every training set here."""
    order = np.random.default_rng([seed, 7]).permutation(count)
    return order[hold:], order[:hold]


def remap_output(model, old_model, layer_name: str, charset, old_charset, offset: int = 0):
    """Copy `old_model`'s output layer into `model`'s column by column for the labels (characters,
    or class names) both share, and the first `offset` columns as they are; the count of shared
    labels, or None when the layers' inputs differ in size."""
    if not layer_name:
        return None
    kernel, bias = (w.copy() for w in model.get_layer(layer_name).get_weights())
    old_kernel, old_bias = old_model.get_layer(layer_name).get_weights()
    if old_kernel.shape[:-1] != kernel.shape[:-1]:
        return None
    columns = [(k, k) for k in range(offset)] + [
        (charset.index(c) + offset, old_charset.index(c) + offset) for c in charset if c in old_charset
    ]
    for new, old in columns:  # the last axis holds the outputs (a dense layer's, or a 1x1 convolution's)
        kernel[..., new], bias[new] = old_kernel[..., old], old_bias[old]
    model.get_layer(layer_name).set_weights([kernel, bias])
    return len(columns) - offset
