"""Training: one loop for every network here, and the pipeline that trains an attacker.

`fit_loop` is the loop: Adam with a linear warm-up then cosine decay, a held-out validation part
that keeps the best weights, early stopping, and a checkpoint after every epoch so an
interrupted run resumes. The seed's network uses it through `train_network` (MNIST, rendered
characters, CAPTCHA crops); the CTC attacker through its own step. `train_attacker` prepares
CAPTCHAs for any attacker, trains it and writes `NAME.keras` + `NAME.json` atomically.
"""
from __future__ import annotations

import io
import json
import math
import shutil
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable, Iterable

import cv2
import numpy as np

from .charset import DIGITS, charset_name
from .errors import CaptchalabError
from .fileio import atomic_write_bytes, atomic_write_json, save_model_atomic
from .manifest import make_manifest
from .runtime import build_with_policy, float32_copy, training_policy


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
    patience: int = 3          # epochs without validation gain before stopping early
    max_rotate: float = 10.0   # degrees
    max_shift: float = 2.0     # pixels
    max_scale: float = 0.1     # relative
    max_shear: float = 0.0     # horizontal shear factor
    elastic: float = 0.0       # elastic distortion strength (pixels of displacement)
    dropout: float = 0.0       # dropout on fc1's output while training (not a layer of the model)

    def check(self) -> None:
        if self.epochs < 1:
            raise CaptchalabError(f"--epochs must be at least 1, got {self.epochs}")
        if self.batch_size < 1:
            raise CaptchalabError(f"--batch-size must be at least 1, got {self.batch_size}")


# -- the loop -------------------------------------------------------------------------------

def make_optimizer(learning_rate: float, warmup_epochs: float, epochs: int, steps_per_epoch: int):
    """Adam with a short linear warm-up, then cosine decay to zero at the last epoch."""
    import keras
    total = max(2, epochs * steps_per_epoch)
    warmup = min(total - 1, int(warmup_epochs * steps_per_epoch))
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=learning_rate / 10 if warmup else learning_rate,
        decay_steps=total - warmup, alpha=0.0,
        warmup_target=learning_rate if warmup else None, warmup_steps=warmup)
    return keras.optimizers.Adam(schedule)


def checkpoint_dir(out: Path) -> Path:
    return Path(out).parent / f".{Path(out).name}.checkpoint"


def _save_checkpoint(ckpt: Path, model, optimizer, state: dict) -> None:
    model.save_weights(ckpt / "last.weights.h5")
    buffer = io.BytesIO()
    np.savez(buffer, *[v.numpy() for v in optimizer.variables])
    atomic_write_bytes(ckpt / "optimizer.npz", buffer.getvalue())
    atomic_write_json(ckpt / "state.json", state)  # written last: it marks the epoch as done


def _load_checkpoint(ckpt: Path, model, optimizer, config: dict) -> dict:
    state_file = ckpt / "state.json"
    if not state_file.is_file():
        raise CaptchalabError(f"nothing to resume: no checkpoint at {ckpt}")
    state = json.loads(state_file.read_text())
    if state["config"] != json.loads(json.dumps(config)):
        raise CaptchalabError(f"the checkpoint at {ckpt} was made with other options; "
                              "rerun with the same options, or without --resume")
    model.load_weights(ckpt / "last.weights.h5")
    with np.load(ckpt / "optimizer.npz") as saved:
        for variable, key in zip(optimizer.variables, sorted(saved.files, key=lambda k: int(k[4:]))):
            variable.assign(saved[key])
    return state


def fit_loop(model, optimizer, *, epochs: int, patience: int, seed: int, train_count: int,
             epoch_batches: Callable[[np.random.Generator], Iterable[tuple]],
             step: Callable, validate: Callable[[], float], checkpoint: Path, config: dict,
             resume: bool = False, verbose: int = 0,
             on_epoch: Callable[[int, dict], None] | None = None) -> dict:
    """Train `model` in place; returns the loop state (history, best epoch, timings).

    Each epoch draws its batches from `epoch_batches(rng)` (rng seeded by (seed, epoch)) and calls
    `step(*batch) -> (loss, correct)`; `validate()` scores the model after each epoch and the
    best weights are restored at the end. `config` must be equal for a run to resume.
    """
    import keras
    optimizer.build(model.trainable_variables)
    state = {"epoch": 0, "best_val_accuracy": -1.0, "best_epoch": 0, "history": [],
             "train_seconds": 0.0, "images_seen": 0, "config": config}
    if resume:
        state = _load_checkpoint(checkpoint, model, optimizer, config)
    elif checkpoint.exists():
        shutil.rmtree(checkpoint)
    try:
        checkpoint.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CaptchalabError(f"cannot write to {checkpoint.parent}: {exc.strerror or exc}") from None
    for epoch in range(state["epoch"], epochs):
        if epoch - state["best_epoch"] >= patience:
            break  # early stop: validation accuracy has not improved for `patience` epochs
        rng = np.random.default_rng([seed, epoch])
        progress = keras.utils.Progbar(train_count, verbose=verbose, stateful_metrics=["accuracy"])
        start = time.perf_counter()
        total_loss = total_correct = 0.0
        seen = 0
        for batch in epoch_batches(rng):
            loss, correct = step(*batch)
            n = len(batch[0])
            seen += n
            total_loss += float(loss) * n
            total_correct += float(correct)
            progress.update(seen, [("loss", float(loss)), ("accuracy", total_correct / seen)])
        state["train_seconds"] += time.perf_counter() - start
        state["images_seen"] += seen
        val_accuracy = validate()
        record = {"epoch": epoch + 1, "loss": total_loss / max(seen, 1),
                  "accuracy": total_correct / max(seen, 1), "val_accuracy": val_accuracy}
        state["history"].append(record)
        state["epoch"] = epoch + 1
        if val_accuracy is None:  # nothing held out: the last weights are the ones kept
            state["best_val_accuracy"], state["best_epoch"] = None, epoch + 1
            model.save_weights(checkpoint / "best.weights.h5")
        elif val_accuracy >= (state["best_val_accuracy"] or -1.0):  # ties: prefer the later, better-settled weights
            state["best_val_accuracy"], state["best_epoch"] = val_accuracy, epoch + 1
            model.save_weights(checkpoint / "best.weights.h5")
        _save_checkpoint(checkpoint, model, optimizer, state)
        if on_epoch:
            on_epoch(epoch + 1, record)
    model.load_weights(checkpoint / "best.weights.h5")
    return state


def seconds_and_rate(state: dict) -> dict:
    return {"epochs_run": state["epoch"], "best_epoch": state["best_epoch"],
            "val_accuracy": state["best_val_accuracy"], "history": state["history"],
            "train_seconds": round(state["train_seconds"], 2),
            "train_images_per_second": round(state["images_seen"] / max(state["train_seconds"], 1e-9), 1)}


# -- the seed's network ---------------------------------------------------------------------

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

    @tf.function(input_signature=[tf.TensorSpec([None, 28, 28, 1], tf.float32),
                                  tf.TensorSpec([None], tf.int32)])
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


def forward(model) -> Callable:
    """The model's compiled inference pass, made once per model and kept on it: a function made
    anew for every call would be traced anew (TensorFlow's retracing warnings)."""
    import tensorflow as tf
    run = getattr(model, "_captchalab_forward", None)
    if run is None:  # one signature for every batch size: traced once
        run = tf.function(lambda x: model(x, training=False),
                          input_signature=[tf.TensorSpec([None, *model.input_shape[1:]], tf.float32)])
        object.__setattr__(model, "_captchalab_forward", run)  # not a tracked Keras attribute
    return run


def predict_proba(model, images: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """Class probabilities for uint8 28x28 crops, one forward call per chunk."""
    classes = model.output_shape[-1]
    out = np.zeros((len(images), classes), np.float32)
    run = forward(model)
    for start in range(0, len(images), batch_size):
        part = images[start:start + batch_size]
        out[start:start + len(part)] = run(to_input(part)).numpy()
    return out


def evaluate(model, images: np.ndarray, labels: np.ndarray, charset: str = DIGITS) -> dict:
    """Accuracy, per-character accuracy and the confusion matrix (rows: truth, columns: guess)."""
    n = len(charset)
    pred = predict_proba(model, images).argmax(axis=1) if len(images) else np.zeros(0, int)
    confusion = np.zeros((n, n), np.int64)
    np.add.at(confusion, (labels.astype(int), pred), 1)
    per_class = {c: (float(confusion[i, i] / confusion[i].sum()) if confusion[i].sum() else None)
                 for i, c in enumerate(charset)}
    return {"accuracy": float((pred == labels).mean()) if len(labels) else 0.0,
            "per_class_accuracy": per_class, "confusion_matrix": confusion.tolist()}


def split_validation(x: np.ndarray, y: np.ndarray, count: int, seed: int):
    """Hold out `count` random training images for validation (never the test set); 0 keeps all."""
    order = np.random.default_rng([seed, 7]).permutation(len(x))
    count = min(count, len(x) // 5)
    val, train = order[:count], order[count:]
    return x[train], y[train], x[val], y[val]


def train_network(model, x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray,
                  y_val: np.ndarray, config: TrainConfig, checkpoint: Path, resume: bool = False,
                  verbose: int = 0, on_epoch: Callable[[int, dict], None] | None = None) -> dict:
    """Train the seed's network on 28x28 crops with per-epoch augmentation."""
    config.check()
    steps = math.ceil(len(x_train) / config.batch_size)
    optimizer = make_optimizer(config.learning_rate, config.warmup_epochs, config.epochs, steps)
    step = make_train_step(model, optimizer, config.label_smoothing, config.dropout)
    y_train = y_train.astype(np.int32)

    def epoch_batches(rng):
        x_epoch = to_input(augment(x_train, rng, config))
        order = rng.permutation(len(x_train))
        for first in range(0, len(order), config.batch_size):
            batch = order[first:first + config.batch_size]
            yield x_epoch[batch], y_train[batch]

    def validate():
        return float((predict_proba(model, x_val).argmax(axis=1) == y_val).mean()) if len(x_val) else None

    return fit_loop(model, optimizer, epochs=config.epochs, patience=config.patience, seed=config.seed,
                    train_count=len(x_train), epoch_batches=epoch_batches, step=step, validate=validate,
                    checkpoint=checkpoint, config=asdict(config), resume=resume, verbose=verbose,
                    on_epoch=on_epoch)


def check_model_path(out: Path) -> Path:
    out = Path(out)
    if out.suffix != ".keras":
        raise CaptchalabError(f"--out must end in .keras, got {out}")
    return out


def finish(model, out: Path, info: dict, wall_start: float) -> dict:
    """Write the final model and its JSON atomically, then drop the checkpoint."""
    save_model_atomic(model, out)
    info = {**info, "wall_seconds": round(time.perf_counter() - wall_start, 2)}
    atomic_write_json(out.with_suffix(".json"), info)
    shutil.rmtree(checkpoint_dir(out), ignore_errors=True)
    return info


def network_info(charset: str, task: str, **fields) -> dict:
    """The JSON fields that make a seed-network model usable as a `segment` attacker."""
    return {"attacker": "segment", "charset": charset, "charset_name": charset_name(charset),
            "input": {"crop": [28, 28, 1]}, "task": task, **fields}


def train_mnist(data, out: Path, config: TrainConfig, resume: bool = False,
                verbose: int = 0, on_epoch=None) -> dict:
    """Train on MNIST, evaluate on the official test set, write `out` and `out`.json."""
    import keras
    from .model import build_model
    out = check_model_path(out)
    config.check()
    wall_start = time.perf_counter()
    keras.utils.set_random_seed(config.seed)
    x_train, y_train, x_val, y_val = split_validation(data.x_train, data.y_train,
                                                      config.validation_count, config.seed)
    build = lambda: build_model(10, seed=config.seed)  # noqa: E731
    model = build_with_policy(build, training_policy())
    state = train_network(model, x_train, y_train, x_val, y_val, config, checkpoint_dir(out), resume,
                          verbose, on_epoch)
    model = float32_copy(model, build)
    test = evaluate(model, data.x_test, data.y_test)
    info = network_info(
        DIGITS, "mnist", test_accuracy=test["accuracy"], per_class_accuracy=test["per_class_accuracy"],
        confusion_matrix=test["confusion_matrix"], train_count=len(x_train), validation_count=len(x_val),
        test_count=len(data.x_test), epochs=config.epochs, batch_size=config.batch_size, seed=config.seed,
        **seconds_and_rate(state),
        manifest=make_manifest("model", task="mnist", config=asdict(config), data_source=data.source,
                               data_hashes=data.file_hashes))
    return finish(model, out, info, wall_start)


# -- any attacker on CAPTCHAs ---------------------------------------------------------------

def prepare_examples(attacker, source, workers: int = 2) -> tuple[list, dict]:
    """Every CAPTCHA of `source` prepared for training `attacker` (each told its label's length
    when the attacker uses it), and counts of what could not be used."""
    from .attack import LABEL_LENGTH, prepare_source
    examples, stats = [], {"captchas": 0, "unreadable": 0}
    for chunk in prepare_source(attacker, source, LABEL_LENGTH, workers):
        for item in chunk:
            stats["captchas"] += 1
            if item.skipped:
                stats["unreadable"] += 1
            else:
                examples.append((item.prepared, item.text))
    if not examples:
        raise CaptchalabError("no usable CAPTCHA to train on")
    return examples, stats


def split_examples(examples: list, fraction: float, seed: int) -> tuple[list, list]:
    order = np.random.default_rng([seed, 7]).permutation(len(examples))
    count = max(1, int(round(len(examples) * fraction))) if len(examples) > 1 else 0
    return [examples[i] for i in order[count:]], [examples[i] for i in order[:count]]


def train_attacker(attacker, source, out: Path, settings, init_from: Path | None = None,
                   workers: int = 2, resume: bool = False, verbose: int = 0, on_epoch=None,
                   plugin_dirs=()) -> dict:
    """Train `attacker` (a fresh instance of any trainable attacker) on the CAPTCHAs of `source`,
    optionally starting from another model's weights; write `out` (.keras) and its JSON."""
    import keras
    from .attackers.base import load_attacker
    out = check_model_path(out)
    if not attacker.trainable:
        raise CaptchalabError(f"attacker {attacker.name!r} cannot be trained")
    wall_start = time.perf_counter()
    keras.utils.set_random_seed(settings.seed)
    source.check_charset(attacker.charset, f"a {attacker.name} attacker for charset "
                                           f"{charset_name(attacker.charset)!r}")
    attacker.model = build_with_policy(lambda: attacker.build(settings.seed), training_policy())
    started_from, taken = "scratch", None
    if init_from:
        base = load_attacker(init_from, plugin_dirs)
        taken = attacker.init_from(base)
        started_from = str(init_from)
        settings = replace(settings, fine_tune=True)
    examples, stats = prepare_examples(attacker, source, workers)
    train, validation = split_examples(examples, settings.validation_fraction, settings.seed)
    result = attacker.fit(train, validation, settings, checkpoint_dir(out), resume, on_epoch)
    attacker.model = float32_copy(attacker.model, lambda: attacker.build(settings.seed))
    described = source.describe()
    info = {"attacker": attacker.name, "charset": attacker.charset,
            "charset_name": charset_name(attacker.charset), "input": attacker.geometry(),
            "hyperparameters": attacker.hparams, "task": "captcha", "source": described,
            "initialised_from": started_from, "initialised_weights": taken, **stats,
            "train_count": len(train), "validation_count": len(validation), "seed": settings.seed,
            **result,
            "manifest": make_manifest("model", task="captcha", attacker=attacker.name,
                                      hyperparameters=attacker.hparams, settings=asdict(settings),
                                      source=described, initialised_from=started_from)}
    return finish(attacker.model, out, info, wall_start)


def most_confused(confusion, charset: str, n: int = 10) -> list[dict]:
    """The `n` largest off-diagonal cells: which true character was read as which, how often."""
    m = np.array(confusion)
    np.fill_diagonal(m, 0)
    cells = np.dstack(np.unravel_index(np.argsort(m, axis=None)[::-1], m.shape))[0][:n]
    return [{"truth": charset[i], "guess": charset[j], "count": int(m[i, j])} for i, j in cells if m[i, j]]


# rendered characters are varied already; the per-epoch augmentation only adds small moves
CHARS_TRAINING = dict(epochs=6, learning_rate=3e-3, max_rotate=5.0, max_shift=1.5, max_scale=0.05)


def train_chars(charset: str, out: Path, config: TrainConfig, count: int = 40000, test_count: int = 5000,
                resume: bool = False, verbose: int = 0, on_epoch=None) -> dict:
    """Train the network on single characters rendered from the bundled fonts; evaluate on a
    held-out set rendered with another seed; write `out` and `out`.json."""
    import keras
    from .data.chars import render_chars
    from .model import build_model
    out = check_model_path(out)
    config.check()
    if count < 2 * len(charset) or test_count < 1:
        raise CaptchalabError(f"--count must be at least twice the charset size ({2 * len(charset)})")
    wall_start = time.perf_counter()
    keras.utils.set_random_seed(config.seed)
    x, y = render_chars(charset, count, config.seed)
    x_test, y_test = render_chars(charset, test_count, config.seed + 1000)
    x_train, y_train, x_val, y_val = split_validation(x, y, config.validation_count, config.seed)
    build = lambda: build_model(len(charset), seed=config.seed)  # noqa: E731
    model = build_with_policy(build, training_policy())
    state = train_network(model, x_train, y_train, x_val, y_val, config, checkpoint_dir(out), resume,
                          verbose, on_epoch)
    model = float32_copy(model, build)
    test = evaluate(model, x_test, y_test, charset)
    info = network_info(
        charset, "chars", test_accuracy=test["accuracy"], per_class_accuracy=test["per_class_accuracy"],
        most_confused=most_confused(test["confusion_matrix"], charset),
        confusion_matrix=test["confusion_matrix"], train_count=len(x_train), validation_count=len(x_val),
        test_count=test_count, epochs=config.epochs, batch_size=config.batch_size, seed=config.seed,
        **seconds_and_rate(state),
        manifest=make_manifest("model", task="chars", config=asdict(config), charset=charset, count=count,
                               test_count=test_count))
    return finish(model, out, info, wall_start)
