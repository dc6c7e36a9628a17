"""Train the deep LeNet network: on MNIST, and (by transfer) on CAPTCHA character crops.

One training core serves both: per-epoch random affine augmentation (OpenCV, cheap next to
the network), Adam with linear warm-up then cosine decay, a held-out validation part that keeps
the best weights, and a checkpoint after every epoch so an interrupted run can resume.
"""
from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from .errors import CaptchalabError
from .fileio import atomic_write_json, save_model_atomic
from .manifest import make_manifest
from .mnist import Mnist


@dataclass
class TrainConfig:
    epochs: int = 5
    batch_size: int = 128
    seed: int = 0
    learning_rate: float = 3e-3
    warmup_epochs: float = 0.3
    label_smoothing: float = 0.1
    validation_count: int = 1000
    patience: int = 3          # epochs without validation gain before stopping early
    max_rotate: float = 10.0   # degrees
    max_shift: float = 2.0     # pixels
    max_scale: float = 0.1     # relative

    def check(self) -> None:
        if self.epochs < 1:
            raise CaptchalabError(f"--epochs must be at least 1, got {self.epochs}")
        if self.batch_size < 1:
            raise CaptchalabError(f"--batch-size must be at least 1, got {self.batch_size}")


def augment(images: np.ndarray, rng: np.random.Generator, config: TrainConfig) -> np.ndarray:
    """Random rotation, scale and shift of each 28x28 uint8 image (digits stay digits)."""
    n = len(images)
    angles = rng.uniform(-config.max_rotate, config.max_rotate, n)
    scales = rng.uniform(1 - config.max_scale, 1 + config.max_scale, n)
    shifts = rng.uniform(-config.max_shift, config.max_shift, (n, 2))
    out = np.empty_like(images)
    for i in range(n):
        m = cv2.getRotationMatrix2D((13.5, 13.5), angles[i], scales[i])
        m[:, 2] += shifts[i]
        out[i] = cv2.warpAffine(images[i], m, (28, 28), flags=cv2.INTER_LINEAR, borderValue=0)
    return out


def to_input(images: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) -> float32 (N, 28, 28, 1) in [0, 1], the network's input."""
    return (images.astype(np.float32) / 255.0)[..., None]


def make_optimizer(config: TrainConfig, steps_per_epoch: int):
    """Adam with a short linear warm-up, then cosine decay to zero at the last epoch."""
    import keras
    total = max(2, config.epochs * steps_per_epoch)
    warmup = min(total - 1, int(config.warmup_epochs * steps_per_epoch))
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=config.learning_rate / 10 if warmup else config.learning_rate,
        decay_steps=total - warmup, alpha=0.0,
        warmup_target=config.learning_rate if warmup else None, warmup_steps=warmup)
    return keras.optimizers.Adam(schedule)


def make_train_step(model, optimizer, label_smoothing: float):
    import tensorflow as tf
    from .fastconv import logits
    variables = model.trainable_variables

    @tf.function(input_signature=[tf.TensorSpec([None, 28, 28, 1], tf.float32),
                                  tf.TensorSpec([None], tf.int32)])
    def step(x, y):
        with tf.GradientTape() as tape:
            z = logits(model, x)
            target = tf.one_hot(y, 10) * (1 - label_smoothing) + label_smoothing / 10
            loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(target, z))
        optimizer.apply(tape.gradient(loss, variables), variables)
        correct = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(z, 1, output_type=tf.int32), y), tf.float32))
        return loss, correct
    return step


def predict_proba(model, images: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """Class probabilities for uint8 28x28 crops, one forward call per chunk."""
    if len(images) == 0:
        return np.zeros((0, 10), np.float32)
    return model.predict(to_input(images), batch_size=batch_size, verbose=0)


def evaluate(model, images: np.ndarray, labels: np.ndarray) -> dict:
    pred = predict_proba(model, images).argmax(axis=1)
    confusion = np.zeros((10, 10), np.int64)
    np.add.at(confusion, (labels.astype(int), pred), 1)
    per_class = {str(c): (float(confusion[c, c] / confusion[c].sum()) if confusion[c].sum() else None)
                 for c in range(10)}
    return {"accuracy": float((pred == labels).mean()) if len(labels) else 0.0,
            "per_class_accuracy": per_class, "confusion_matrix": confusion.tolist()}


def split_validation(x: np.ndarray, y: np.ndarray, count: int, seed: int):
    """Hold out `count` random training images for validation (never the test set)."""
    order = np.random.default_rng([seed, 7]).permutation(len(x))
    count = min(count, len(x) // 5)
    val, train = order[:count], order[count:]
    return x[train], y[train], x[val], y[val]


def checkpoint_dir(out: Path) -> Path:
    return out.parent / f".{out.name}.checkpoint"


def _save_checkpoint(ckpt: Path, model, optimizer, state: dict) -> None:
    from .fileio import atomic_write_bytes
    import io
    model.save_weights(ckpt / "last.weights.h5")
    buffer = io.BytesIO()
    np.savez(buffer, *[v.numpy() for v in optimizer.variables])
    atomic_write_bytes(ckpt / "optimizer.npz", buffer.getvalue())
    atomic_write_json(ckpt / "state.json", state)  # written last: it marks the epoch as done


def _load_checkpoint(ckpt: Path, model, optimizer, config: TrainConfig) -> dict:
    state_file = ckpt / "state.json"
    if not state_file.is_file():
        raise CaptchalabError(f"nothing to resume: no checkpoint at {ckpt}")
    state = json.loads(state_file.read_text())
    if state["config"] != asdict(config):
        raise CaptchalabError(f"the checkpoint at {ckpt} was made with other options; "
                              "rerun with the same options, or without --resume")
    model.load_weights(ckpt / "last.weights.h5")
    with np.load(ckpt / "optimizer.npz") as saved:
        for variable, key in zip(optimizer.variables, sorted(saved.files, key=lambda k: int(k[4:]))):
            variable.assign(saved[key])
    return state


def fit(model, x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
        config: TrainConfig, out: Path, resume: bool = False, verbose: int = 0,
        on_epoch: Callable[[int, dict], None] | None = None) -> dict:
    """Train `model` in place; returns the training history and timings.

    After each epoch the weights, optimizer state and loop state go to a checkpoint folder
    beside `out`; with `resume` training continues from there. The best weights by validation
    accuracy are kept and restored at the end.
    """
    import keras
    config.check()
    ckpt = checkpoint_dir(out)
    steps = math.ceil(len(x_train) / config.batch_size)
    optimizer = make_optimizer(config, steps)
    optimizer.build(model.trainable_variables)
    state = {"epoch": 0, "best_val_accuracy": -1.0, "best_epoch": 0, "history": [],
             "train_seconds": 0.0, "images_seen": 0, "config": asdict(config)}
    if resume:
        state = _load_checkpoint(ckpt, model, optimizer, config)
    elif ckpt.exists():
        shutil.rmtree(ckpt)
    try:
        ckpt.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CaptchalabError(f"cannot write to {ckpt.parent}: {exc.strerror or exc}") from None
    step = make_train_step(model, optimizer, config.label_smoothing)
    y_train = y_train.astype(np.int32)
    for epoch in range(state["epoch"], config.epochs):
        if epoch - state["best_epoch"] >= config.patience:
            break  # early stop: validation accuracy has not improved for `patience` epochs
        rng = np.random.default_rng([config.seed, epoch])
        x_epoch = to_input(augment(x_train, rng, config))
        order = rng.permutation(len(x_train))
        progress = keras.utils.Progbar(len(x_train), verbose=verbose, stateful_metrics=["accuracy"])
        start = time.perf_counter()
        total_loss = total_correct = 0.0
        for first in range(0, len(order), config.batch_size):
            batch = order[first:first + config.batch_size]
            loss, correct = step(x_epoch[batch], y_train[batch])
            total_loss += float(loss) * len(batch)
            total_correct += float(correct)
            seen = first + len(batch)
            progress.update(seen, [("loss", float(loss)), ("accuracy", total_correct / seen)])
        state["train_seconds"] += time.perf_counter() - start
        state["images_seen"] += len(x_train)
        val_accuracy = evaluate(model, x_val, y_val)["accuracy"] if len(x_val) else 0.0
        record = {"epoch": epoch + 1, "loss": total_loss / len(x_train),
                  "accuracy": total_correct / len(x_train), "val_accuracy": val_accuracy}
        state["history"].append(record)
        state["epoch"] = epoch + 1
        if val_accuracy >= state["best_val_accuracy"]:  # ties: prefer the later, better-settled weights
            state["best_val_accuracy"], state["best_epoch"] = val_accuracy, epoch + 1
            model.save_weights(ckpt / "best.weights.h5")
        _save_checkpoint(ckpt, model, optimizer, state)
        if on_epoch:
            on_epoch(epoch + 1, record)
    model.load_weights(ckpt / "best.weights.h5")
    return state


def finish(model, state: dict, out: Path, metadata: dict, wall_start: float) -> dict:
    """Write the final model and its JSON atomically, then drop the checkpoint."""
    save_model_atomic(model, out)
    info = {**metadata,
            "epochs_run": state["epoch"], "best_epoch": state["best_epoch"],
            "val_accuracy": state["best_val_accuracy"], "history": state["history"],
            "train_seconds": round(state["train_seconds"], 2),
            "train_images_per_second": round(state["images_seen"] / max(state["train_seconds"], 1e-9), 1),
            "wall_seconds": round(time.perf_counter() - wall_start, 2)}
    atomic_write_json(out.with_suffix(".json"), info)
    shutil.rmtree(checkpoint_dir(out), ignore_errors=True)
    return info


def check_model_path(out: Path) -> Path:
    out = Path(out)
    if out.suffix != ".keras":
        raise CaptchalabError(f"--out must end in .keras, got {out}")
    return out


def train_mnist(data: Mnist, out: Path, config: TrainConfig, resume: bool = False,
                verbose: int = 0, on_epoch=None) -> dict:
    """Train on MNIST, evaluate on the official test set, write `out` and `out`.json."""
    from .model import build_model
    import keras
    out = check_model_path(out)
    config.check()
    wall_start = time.perf_counter()
    keras.utils.set_random_seed(config.seed)
    x_train, y_train, x_val, y_val = split_validation(data.x_train, data.y_train,
                                                      config.validation_count, config.seed)
    model = build_model(seed=config.seed)
    state = fit(model, x_train, y_train, x_val, y_val, config, out, resume, verbose, on_epoch)
    test = evaluate(model, data.x_test, data.y_test)
    metadata = {
        "task": "mnist", "test_accuracy": test["accuracy"],
        "per_class_accuracy": test["per_class_accuracy"], "confusion_matrix": test["confusion_matrix"],
        "train_count": len(x_train), "validation_count": len(x_val), "test_count": len(data.x_test),
        "epochs": config.epochs, "batch_size": config.batch_size, "seed": config.seed,
        "manifest": make_manifest("model", task="mnist", config=asdict(config),
                                  data_source=data.source, data_hashes=data.file_hashes),
    }
    return finish(model, state, out, metadata, wall_start)


def captcha_crops(source, workers: int = 2) -> tuple[np.ndarray, np.ndarray, dict]:
    """Segment every CAPTCHA of `source` (each with its label's length as the hint) and keep the
    crops of those cut into exactly as many pieces as the label has characters."""
    from .attack import LABEL_LENGTH, segment_source
    crops, labels = [], []
    stats = {"captchas": 0, "captchas_used": 0, "unreadable": 0, "miscounted": 0, "crops_dropped": 0}
    for chunk in segment_source(source, LABEL_LENGTH, workers):
        for item in chunk:
            stats["captchas"] += 1
            if item.skipped:
                stats["unreadable"] += 1
            elif len(item.crops) != len(item.text):
                stats["miscounted"] += 1
                stats["crops_dropped"] += len(item.crops)
            else:
                stats["captchas_used"] += 1
                crops.append(item.crops)
                labels.extend(int(c) for c in item.text)
    if not crops:
        raise CaptchalabError("no CAPTCHA could be segmented into the right number of characters")
    stats["crops_used"] = len(labels)
    return np.concatenate(crops), np.array(labels, np.uint8), stats


# fine-tuning from MNIST weights: a gentler learning rate and lighter augmentation
CAPTCHA_TRAINING = dict(epochs=8, learning_rate=1e-3, warmup_epochs=0.2,
                        max_rotate=6.0, max_shift=1.5, max_scale=0.08, patience=4)


def train_captcha(source, out: Path, init_from: Path | None, config: TrainConfig,
                  validation_fraction: float = 0.1, workers: int = 2, resume: bool = False,
                  verbose: int = 0, on_epoch=None) -> dict:
    """Train the network on segmented CAPTCHA characters, from MNIST weights or from scratch."""
    from .model import build_model, load_model
    import keras
    out = check_model_path(out)
    config.check()
    wall_start = time.perf_counter()
    keras.utils.set_random_seed(config.seed)
    x, y, stats = captcha_crops(source, workers)
    config = replace(config, validation_count=max(1, int(len(x) * validation_fraction)))
    x_train, y_train, x_val, y_val = split_validation(x, y, config.validation_count, config.seed)
    model = load_model(init_from) if init_from else build_model(seed=config.seed)
    state = fit(model, x_train, y_train, x_val, y_val, config, out, resume, verbose, on_epoch)
    val = evaluate(model, x_val, y_val)
    described = source.describe()
    metadata = {
        "task": "captcha", "source": described,
        "initialised_from": str(init_from) if init_from else "scratch",
        **stats, "train_crops": len(x_train), "validation_crops": len(x_val),
        "validation_per_class_accuracy": val["per_class_accuracy"],
        "epochs": config.epochs, "batch_size": config.batch_size, "seed": config.seed,
        "manifest": make_manifest("model", task="captcha", config=asdict(config),
                                  source=described, initialised_from=str(init_from or "scratch")),
    }
    return finish(model, state, out, metadata, wall_start)
