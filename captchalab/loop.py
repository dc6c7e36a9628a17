"""The shared training loop: every trainable attacker and the seed's network train through it.

`fit_loop` is the loop: Adam, validation after every epoch that keeps the best weights, and a
checkpoint after every epoch so an interrupted run resumes (`--resume`) to the same result. It
runs in one of two ways:

- until it converges (`Stopping`, every attacker): a warm-up, then a constant learning rate cut
  by `factor` whenever the CAPTCHA-level validation score has not improved for `patience` epochs;
  after `reductions` cuts, the next plateau ends the run. A budget of examples seen (deterministic)
  bounds it, and an optional wall-clock limit; a run either of them stops is not converged.
- a fixed recipe (the seed's network on MNIST and rendered characters): warm-up then cosine
  decay to zero over a set number of epochs, measured on its own test set.

Either way the run ends with a verdict (`convergence`): whether it converged, why it stopped, and
whether it underfits (stopped improving, but cannot even read its own training CAPTCHAs).
`fit_declared` is the whole of `fit` for an attacker that declares its model (`build`), its
targets and its loss: plugins get the loop, checkpoints, resume and epoch lines without writing
any of it.
"""
from __future__ import annotations

import fcntl
import io
import json
import math
import os
import shutil
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from .errors import CaptchalabError
from .fileio import atomic_write_bytes, atomic_write_json

UNDERFIT = 0.9          # training CAPTCHAs read right below this share: the model underfits
MIN_VALIDATION = 300    # fewer validation CAPTCHAs than this cannot decide when to stop (see README)


@dataclass(frozen=True)
class Stopping:
    """When a converging run ends (see the module's docstring)."""
    budget: int                       # examples seen at most
    patience: int = 3                 # epochs without a validation gain before the rate is cut
    reductions: int = 2               # cuts before a plateau ends the run
    factor: float = 0.3               # each cut multiplies the learning rate by this
    warmup_epochs: float = 0.5
    wall_seconds: float | None = None  # a wall-clock limit; a run it stops is flagged

    def check(self) -> None:
        if self.budget < 1:
            raise CaptchalabError(f"the training budget must be at least 1 example, got {self.budget}")
        if self.patience < 1 or self.reductions < 0 or not 0 < self.factor < 1:
            raise CaptchalabError("patience must be at least 1, reductions at least 0 and factor in (0, 1)")
        if self.wall_seconds is not None and self.wall_seconds <= 0:
            raise CaptchalabError(f"the wall-clock limit must be positive, got {self.wall_seconds}")

    def epochs(self, train_count: int) -> int:
        return max(1, math.ceil(self.budget / max(train_count, 1)))


@dataclass(frozen=True)
class PseudoLabelling:
    """Semi-supervised training on unlabelled CAPTCHAs (the second stage of GeeSolver, IEEE S&P
    2023): a teacher whose weights are an exponential moving average of the student's reads the
    unlabelled CAPTCHAs before every epoch; those it reads with every character at least
    `threshold` confident join that epoch's training set under the teacher's reading, the most
    confident first, at most `per_labelled` for each labelled CAPTCHA, so the labels keep their
    share of every epoch (and an epoch's cost stays near twice the labelled one)."""
    threshold: float = 0.9
    decay: float = 0.99   # per training step: teacher = decay * teacher + (1 - decay) * student
    per_labelled: float = 1.0

    def choose(self, readings, labelled: int, charset: str, max_length: int) -> list[int]:
        """Which readings become this epoch's pseudo-labels: confident ones, the likeliest first,
        at most `per_labelled` x `labelled` of them, in their original order."""
        chosen = confident(readings, self.threshold, charset, max_length)
        chosen.sort(key=lambda k: -min(readings[k].confidence))
        return sorted(chosen[:int(self.per_labelled * labelled)])


class TeacherStage:
    """Semi-supervised training in two stages, as the attackers that declare it (`semi_supervised`)
    share it: `first(fit_labelled)` runs the first stage (the labels alone) and moves the
    checkpoint of the second into a subfolder; `start(model)` makes the mean teacher of the second
    from the model the first left; `notes(...)` is what the model's JSON records of both."""

    def __init__(self, checkpoint, resume: bool, pseudo: PseudoLabelling = PseudoLabelling()):
        self.checkpoint, self.resume, self.pseudo = Path(checkpoint), resume, pseudo
        self.labelled, self.teacher, self.update = None, None, None
        self.pseudo_count = 0  # pseudo-labels in the epoch being trained

    def first(self, fit_labelled: Callable[[], dict]) -> None:
        # a teacher that starts from a model which has not seen the labels pseudo-labels wrongly
        # and the student learns its mistakes (measured on text: 94% of a synthetic model's
        # confident readings were right, 98% of the labelled fine-tune's)
        self.labelled = fit_labelled()
        self.checkpoint = self.checkpoint / "semi-supervised"
        self.resume = self.resume and (self.checkpoint / "state.json").is_file()

    def start(self, model) -> None:
        import keras
        self.teacher = keras.models.clone_model(model)
        self.teacher.set_weights(model.get_weights())
        self.update = mean_teacher(model, self.teacher, self.pseudo.decay)

    def epoch_notes(self) -> dict:
        return {"pseudo_labelled": self.pseudo_count}

    def notes(self, result: dict, unlabelled_count: int, history: list, unit: str = "CAPTCHAs") -> dict:
        """`result` (the second stage's) with both stages' record; `unit` says what a pseudo-label is."""
        return {**result, "pseudo_labelling": {**asdict(self.pseudo), "unlabelled": unlabelled_count, "unit": unit,
                                                "pseudo_labelled_per_epoch": [r["pseudo_labelled"] for r in history]},
                "supervised_stage": {k: self.labelled[k] for k in ("epochs_run", "val_accuracy", "convergence",
                                                                   "train_seconds")},
                "train_seconds": round(result["train_seconds"] + self.labelled["train_seconds"], 2)}


def confident(readings, threshold: float, charset: str, max_length: int = 8) -> list[int]:
    """Indices of the readings a pseudo-label may come from: a non-empty text of the charset, no
    longer than `max_length`, every character at least `threshold` confident."""
    return [k for k, r in enumerate(readings) if r.text and len(r.text) <= max_length
            and all(c in charset for c in r.text) and len(r.confidence) == len(r.text)
            and min(r.confidence) >= threshold]


def mean_teacher(student, teacher, decay: float) -> Callable[[], None]:
    """A compiled update moving each teacher weight towards the student's: t = decay t + (1 - decay) s."""
    import tensorflow as tf
    pairs = list(zip(teacher.weights, student.weights))

    @tf.function
    def update():
        for t, s in pairs:
            t.assign(decay * t + (1.0 - decay) * tf.cast(s, t.dtype))
    return update


def captcha_score(attacker, examples: list, limit: int = 1000) -> float | None:
    """The share of (prepared, answer) examples the attacker passes (its kind's rule: the exact
    answer for text and grids, within tolerance for sliders and rotations): the CAPTCHA-level
    score every training run is judged by (a crop or character score would hide what the cuts
    cost)."""
    from .kinds import get_kind
    if not examples:
        return None
    chosen = examples[:limit]
    readings = attacker.read_prepared([p for p, _ in chosen])
    passes = get_kind(attacker.kind).correct  # exact for text and grids, within tolerance for sliders
    return float(np.mean([passes(t, r.text) for r, (_, t) in zip(readings, chosen)]))


def decisive(validation_count: int | None) -> bool:
    """Whether this many validation CAPTCHAs can decide when a run stops (None: a fixed recipe's
    own held-out count, which always may)."""
    return validation_count is None or validation_count >= MIN_VALIDATION


def validation_size(count: int) -> int:
    """How many of `count` labelled CAPTCHAs are held out to decide when to stop: a tenth, at most
    1,000 (the 95% interval of an accuracy near 90% is then +-1.9 points). Below MIN_VALIDATION
    the run is flagged: the budget, not the validation score, decides."""
    return 0 if count < 2 else max(1, min(round(0.1 * count), 1000))


def stopping_for(settings, hparams: dict, train_count: int, validation_count: int, budget: int,
                 small_set_budget: int, warmup_epochs: float = 0.5) -> Stopping:
    """The stopping rule of one training run: `--budget`, else `--epochs` passes over the training
    set, else the attacker's `budget`; but where too few CAPTCHAs are held out to decide
    (fewer than MIN_VALIDATION), the budget itself decides, so a smaller one (`small_set_budget`)
    runs whole. An `epochs` hyper-parameter caps the passes either way."""
    if getattr(settings, "budget", None) is not None:
        chosen = settings.budget
    elif settings.epochs:
        chosen = settings.epochs * train_count
    else:
        chosen = budget if decisive(validation_count) else small_set_budget
    if "epochs" in hparams:
        chosen = min(chosen, hparams["epochs"] * train_count)
    return Stopping(chosen, hparams.get("patience", 3), warmup_epochs=warmup_epochs,
                    wall_seconds=getattr(settings, "wall_seconds", None))


def plan(learning_rate: float, stopping: Stopping, train_count: int, batch_size: int,
         validation_count: int):
    """The optimizer of one converging run. With enough validation CAPTCHAs to decide, the rate
    holds and is cut on plateaus; with fewer (a fine-tune on a few hundred labelled CAPTCHAs) the
    validation score cannot decide, so `fit_loop` runs the whole budget, here on a cosine schedule
    (the low rates it ends with matter: measured on the real-recipe stand-in, 76.25% stopped at
    epoch 12 of 34, 79.5% run to the end), and the verdict says so."""
    steps = math.ceil(train_count / batch_size)
    if decisive(validation_count):
        return plateau_optimizer(learning_rate, int(stopping.warmup_epochs * steps))
    return make_optimizer(learning_rate, stopping.warmup_epochs, stopping.epochs(train_count), steps)


def plateau_optimizer(learning_rate: float, warmup_steps: int):
    """Adam whose rate warms up linearly over `warmup_steps`, then holds; `optimizer.rate_scale`
    (a variable; a resumed run sets it again from the number of cuts made) is what a plateau cuts."""
    import keras
    scale = keras.Variable(1.0, trainable=False, name="rate_scale")

    class WarmupThenHold(keras.optimizers.schedules.LearningRateSchedule):
        def __call__(self, step):
            warm = keras.ops.minimum(1.0, (keras.ops.cast(step, "float32") + 1.0) / max(warmup_steps, 1))
            return learning_rate * warm * scale

        def get_config(self):
            return {"learning_rate": learning_rate, "warmup_steps": warmup_steps}

    optimizer = keras.optimizers.Adam(WarmupThenHold())
    optimizer.rate_scale = scale
    return optimizer


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


@contextmanager
def training_lock(out: Path):
    """Hold the training of model `out` for this run. A second run into the same model would
    delete (or resume) the checkpoint under the first, so it is refused in one line. The lock is a
    flock on a file beside the model: the system releases it however the process ends."""
    path = Path(out).parent / f".{Path(out).name}.lock"
    while True:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle = open(path, "a")
        except OSError as exc:
            raise CaptchalabError(f"cannot write to {path.parent}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise CaptchalabError(f"another run is training {out}: wait for it to end, or train into another "
                                  "--out") from None
        try:  # the run before may have removed the file between our open and our lock: lock the new one
            if os.fstat(handle.fileno()).st_ino == os.stat(path).st_ino:
                break
        except FileNotFoundError:
            pass
        handle.close()
    try:
        yield
    finally:
        path.unlink(missing_ok=True)  # nothing left beside the model once the run is over
        handle.close()


def check_resumable(out: Path, resume: bool) -> None:
    """Refuse --resume with no checkpoint at once, before any CAPTCHA is prepared."""
    if resume and not (checkpoint_dir(out) / "state.json").is_file():
        raise CaptchalabError(f"nothing to resume: no checkpoint at {checkpoint_dir(out)}")


def random_states(model) -> list:
    """The model's random-number states (its dropout layers' seed generators): variables that are
    not weights, so save_weights leaves them out, yet a resumed run must draw the same masks."""
    weights = {id(v) for v in model.weights}
    return [v for v in model.variables if id(v) not in weights]


def _save_arrays(path: Path, variables) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, *[v.numpy() for v in variables])
    atomic_write_bytes(path, buffer.getvalue())


def _load_arrays(path: Path, variables) -> None:
    with np.load(path) as saved:
        for variable, key in zip(variables, sorted(saved.files, key=lambda k: int(k[4:]))):
            variable.assign(saved[key])


def _save_checkpoint(ckpt: Path, model, optimizer, state: dict, teacher=None) -> None:
    model.save_weights(ckpt / "last.weights.h5")
    if teacher is not None:
        teacher.save_weights(ckpt / "teacher.weights.h5")
    _save_arrays(ckpt / "optimizer.npz", optimizer.variables)
    _save_arrays(ckpt / "random.npz", random_states(model))
    atomic_write_json(ckpt / "state.json", state)  # written last: it marks the epoch as done


def _load_checkpoint(ckpt: Path, model, optimizer, config: dict, teacher=None) -> dict:
    state_file = ckpt / "state.json"
    if not state_file.is_file():
        raise CaptchalabError(f"nothing to resume: no checkpoint at {ckpt}")
    state = json.loads(state_file.read_text())
    if state["config"] != json.loads(json.dumps(config)):
        raise CaptchalabError(f"the checkpoint at {ckpt} was made with other options; "
                              "rerun with the same options, or without --resume")
    model.load_weights(ckpt / "last.weights.h5")
    if teacher is not None:
        teacher.load_weights(ckpt / "teacher.weights.h5")
    _load_arrays(ckpt / "optimizer.npz", optimizer.variables)
    if (ckpt / "random.npz").is_file():  # (checkpoints made before it was saved lack it)
        _load_arrays(ckpt / "random.npz", random_states(model))
    return state


def fit_loop(model, optimizer, *, seed: int, train_count: int, epochs: int = 0, patience: int = 0,
             epoch_batches: Callable[[np.random.Generator], Iterable[tuple]],
             step: Callable, validate: Callable[[], float | None], checkpoint: Path, config: dict,
             resume: bool = False, verbose: int = 0,
             on_epoch: Callable[[int, dict], None] | None = None,
             stopping: Stopping | None = None, train_score: Callable[[], float | None] | None = None,
             validation_count: int | None = None, teacher=None,
             epoch_notes: Callable[[], dict] | None = None) -> dict:
    """Train `model` in place; returns the loop state (history, best epoch, timings, verdict).

    Each epoch draws its batches from `epoch_batches(rng)` (rng seeded by (seed, epoch)) and calls
    `step(*batch) -> (loss, correct)` (correct None: the step does not decode its batch, so no
    training accuracy is recorded); `validate()` scores the model after each epoch and the
    best weights are restored at the end. With `stopping` the run converges (the optimizer comes
    from `plan`; `epochs` and `patience` are derived from `stopping`, and with fewer than
    MIN_VALIDATION `validation_count` plateaus decide nothing: the budget runs whole and its last
    weights are kept); without,
    it runs `epochs` epochs of a fixed recipe, ending early after `patience` epochs without gain.
    `train_score()` reads training CAPTCHAs with the kept weights (the underfitting check).
    A `teacher` model (semi-supervised training) is checkpointed beside the model.
    `epoch_notes()` adds the caller's own numbers to each epoch's record (kept across a resume).
    `config` must be equal for a run to resume.
    """
    import keras
    optimizer.build(model.trainable_variables)
    if stopping is not None:
        stopping.check()
        epochs, patience = stopping.epochs(train_count), stopping.patience
    state = {"epoch": 0, "best_val_accuracy": -1.0, "best_epoch": 0, "history": [], "since_best": 0,
             "best_loss": float("inf"),
             "reductions": 0, "stopped": None, "train_seconds": 0.0, "images_seen": 0, "config": config}
    if resume:
        state = _load_checkpoint(checkpoint, model, optimizer, config, teacher)
        if hasattr(optimizer, "rate_scale"):  # the cuts made before the interruption
            optimizer.rate_scale.assign(stopping.factor ** state["reductions"])
    elif checkpoint.exists():
        shutil.rmtree(checkpoint)
    try:
        checkpoint.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CaptchalabError(f"cannot write to {checkpoint.parent}: {exc.strerror or exc}") from None
    wall_start = time.perf_counter() - state["train_seconds"]
    while state["stopped"] is None:
        epoch = state["epoch"]
        if epoch >= epochs:
            state["stopped"] = "budget"
            break
        rng = np.random.default_rng([seed, epoch])
        progress = keras.utils.Progbar(train_count, verbose=verbose, stateful_metrics=["accuracy"])
        start = time.perf_counter()
        total_loss = total_correct = 0.0
        seen = 0
        decodes = True
        for batch in epoch_batches(rng):
            loss, correct = step(*batch)
            n = len(batch[0])
            seen += n
            total_loss += float(loss) * n
            decodes = correct is not None
            total_correct += float(correct) if decodes else 0.0
            progress.update(seen, [("loss", float(loss))] + ([("accuracy", total_correct / seen)] if decodes else []))
        state["train_seconds"] += time.perf_counter() - start
        state["images_seen"] += seen
        val_accuracy = validate()
        record = {"epoch": epoch + 1, "loss": total_loss / max(seen, 1),
                  **({"accuracy": total_correct / max(seen, 1)} if decodes else {}),
                  "val_accuracy": val_accuracy, "examples_seen": state["images_seen"],
                  **(epoch_notes() if epoch_notes else {})}
        if hasattr(optimizer, "rate_scale"):
            record["learning_rate_scale"] = round(float(optimizer.rate_scale.numpy()), 6)
        state["history"].append(record)
        state["epoch"] = epoch + 1
        if val_accuracy is None or (stopping is not None and not decisive(validation_count)):
            # nothing held out, or too few to decide when to stop, which are too few to pick weights
            # by (100 of 100 at epoch 3 kept a fine-tune that read 95.6% of its own training
            # CAPTCHAs): the last weights are kept, at the end of the budget's cosine schedule
            state["best_val_accuracy"], state["best_epoch"] = val_accuracy, epoch + 1
            model.save_weights(checkpoint / "best.weights.h5")
        elif val_accuracy > state["best_val_accuracy"] or (stopping is None and val_accuracy == state["best_val_accuracy"]):
            # (a fixed recipe prefers the later of equal epochs: its rate is lower, its weights settled)
            state["best_val_accuracy"], state["best_epoch"] = val_accuracy, epoch + 1
            state["since_best"] = 0
            model.save_weights(checkpoint / "best.weights.h5")
        elif stopping is not None and state["best_val_accuracy"] <= 0 and record["loss"] < 0.98 * state["best_loss"]:
            # nothing read yet, but the loss still falls: CTC readers spend their first epochs so
            state["since_best"] = 0
        else:
            state["since_best"] += 1
        state["best_loss"] = min(state["best_loss"], record["loss"])
        if val_accuracy is not None and decisive(validation_count) and state["since_best"] >= patience:
            if stopping is not None and state["reductions"] < stopping.reductions and state["best_val_accuracy"] < 1:
                # (a perfect validation score cannot rise: a cut could not be seen to help)
                optimizer.rate_scale.assign(optimizer.rate_scale * stopping.factor)  # a plateau: cut the rate
                state["reductions"] += 1
                state["since_best"] = 0
            else:
                state["stopped"] = "plateau"
        if stopping is not None and stopping.wall_seconds and state["stopped"] is None \
                and time.perf_counter() - wall_start > stopping.wall_seconds:
            state["stopped"] = "time limit"
        _save_checkpoint(checkpoint, model, optimizer, state, teacher)
        if on_epoch:
            on_epoch(epoch + 1, record)
    model.load_weights(checkpoint / "best.weights.h5")
    state["convergence"] = convergence(state, validation_count, train_score() if train_score else None, stopping)
    return state


def convergence(state: dict, validation_count: int | None, train_accuracy: float | None,
                stopping: Stopping | None) -> dict:
    """The verdict on a finished run: converged means the validation score had stopped improving
    (a plateau, after every rate cut), with enough validation CAPTCHAs to tell, and the model reads
    its own training CAPTCHAs (no underfitting). Anything else is flagged with its reasons."""
    record = {"train_accuracy": train_accuracy, "validation_count": validation_count,
              "examples_seen": state["images_seen"], "rate_cuts": state["reductions"],
              "validation_curve": [r["val_accuracy"] for r in state["history"]],
              "budget": stopping.budget if stopping else None}
    if stopping is None:  # the seed's network on characters: a recipe judged on its own test set
        return {"converged": None, "stopped": "recipe", "underfit": False,
                "reasons": ["a fixed recipe of epochs, judged by its test-set accuracy"], **record}
    reasons = []
    budget_ran = state["stopped"] != "time limit"  # a run the clock stopped did not run its budget out
    if not budget_ran:
        reasons.append(f"stopped by the wall-clock limit after {state['epoch']} epochs ({state['images_seen']:,} "
                       "examples" + (f" of its budget of {stopping.budget:,}" if stopping.budget else "") + ")")
    if state["best_val_accuracy"] is None:
        reasons.append("nothing was held out to decide on" + (": its budget decided" if budget_ran else ""))
    elif not decisive(validation_count):
        reasons.append(f"only {validation_count} validation CAPTCHAs (fewer than {MIN_VALIDATION}): too few "
                       "to decide when to stop" + (f", so its whole budget ran ({state['images_seen']:,} examples)"
                                                   if budget_ran else ""))
    elif state["stopped"] == "budget":
        reasons.append(f"still improving when its budget ended ({state['images_seen']:,} examples, "
                       f"{state['epoch']} epochs; best at epoch {state['best_epoch']})")
    underfit = train_accuracy is not None and train_accuracy < UNDERFIT
    if underfit:
        reasons.append(f"underfitting: it reads only {train_accuracy:.1%} of its own training CAPTCHAs")
    return {"converged": not reasons, "stopped": state["stopped"], "reasons": reasons, "underfit": underfit,
            **record}


def describe_verdict(verdict: dict | None) -> str:
    """A convergence verdict in one line, as the CLI and the quickstart page say it."""
    verdict = verdict or {}
    extends = (f"; it trained on from {verdict['extends']} on the same CAPTCHAs, so its own verdict decides"
               if verdict.get("extends") else "")
    if verdict.get("converged") and "examples_seen" not in verdict:  # an ensemble: its members' runs did
        return f"converged ({verdict['stopped']})"
    if verdict.get("converged"):
        return (f"converged ({verdict['stopped']}, {verdict.get('rate_cuts', 0)} learning-rate cuts, "
                f"{verdict['examples_seen']:,} examples seen{extends})")
    return "NOT converged, so a lower bound: " + "; ".join(verdict.get("reasons") or ["no verdict"]) + extends


def seconds_and_rate(state: dict) -> dict:
    return {"epochs_run": state["epoch"], "best_epoch": state["best_epoch"],
            "val_accuracy": state["best_val_accuracy"], "history": state["history"],
            "convergence": state["convergence"],
            "train_seconds": round(state["train_seconds"], 2),
            "train_images_per_second": round(state["images_seen"] / max(state["train_seconds"], 1e-9), 1)}


def forward(model) -> Callable:
    """The model's compiled inference pass, made once per model and kept on it: a function made
    anew for every call would be traced anew (TensorFlow's retracing warnings)."""
    import tensorflow as tf
    run = getattr(model, "_captchalab_forward", None)
    if run is None:  # one signature for every batch size: traced once
        run = tf.function(lambda x: model(x, training=False), autograph=False,  # no Python control flow to convert
                          input_signature=[tf.TensorSpec([None, *model.input_shape[1:]], tf.float32)])
        object.__setattr__(model, "_captchalab_forward", run)  # not a tracked Keras attribute
    return run


def fresh_seed(rng: np.random.Generator) -> int:
    """The generation seed of one epoch's fresh CAPTCHAs, drawn from the epoch's generator (seeded
    by the run's seed and the epoch), so a resumed run draws the same ones."""
    return int(rng.integers(2 ** 31 - 1))


def held_out(count: int, hold: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of `count` items split into (kept for training, `hold` held out), at random from
    `seed`: the one split of every training set here."""
    order = np.random.default_rng([seed, 7]).permutation(count)
    return order[hold:], order[:hold]


# defaults of the declared-model loop when neither the settings nor the hyper-parameters say
DECLARED_DEFAULTS = {"budget": 200_000, "batch_size": 64, "learning_rate": 1e-3, "patience": 3}


def fit_declared(attacker, train: list, validation: list, settings, checkpoint: Path,
                 resume: bool = False, on_epoch: Callable[[int, dict], None] | None = None,
                 fresh: Callable[[int], list] | None = None) -> dict:
    """Train `attacker.model` in place through the shared loop, from what the attacker declares:
    `inputs(prepared) -> array` (the model's input batch), `targets(texts) -> array` (what the
    loss compares outputs with), `loss(targets, outputs) -> per-example loss` (Keras ops), and
    optionally `augment(inputs, rng)`. It trains until the CAPTCHA-level validation score (the
    share of held-out CAPTCHAs whose `read_prepared` text equals the truth) converges.

    Budget, batch size, learning rate and patience come from the settings, else from the
    attacker's hyper-parameters of those names, else from DECLARED_DEFAULTS; an `epochs`
    hyper-parameter caps the passes; a fine-tune halves the default learning rate. With `fresh`
    every epoch trains on the examples `fresh(seed)` draws instead (see `fresh_seed`)."""
    import tensorflow as tf
    from dataclasses import asdict
    h = attacker.hparams

    def setting(name):
        chosen = getattr(settings, name, None)
        return chosen if chosen is not None else h.get(name, DECLARED_DEFAULTS[name])

    batch_size = setting("batch_size")
    learning_rate = settings.learning_rate or h.get("learning_rate", DECLARED_DEFAULTS["learning_rate"]) * \
        (0.5 if settings.fine_tune else 1)

    def arrays(examples):
        x = np.asarray(attacker.inputs([p for p, _ in examples]))
        y = np.asarray(attacker.targets([t for _, t in examples]))
        if len(x) != len(y) or not len(x):
            raise CaptchalabError(f"attacker {attacker.name!r}: inputs() and targets() must give one row per "
                                  f"training CAPTCHA (got {len(x)} and {len(y)})")
        return x, y

    x, y = arrays(train)
    budget = h.get("budget", DECLARED_DEFAULTS["budget"])
    stopping = stopping_for(settings, {**h, "patience": setting("patience")}, len(x), len(validation), budget,
                            max(budget // 15, 30 * len(x)))
    optimizer = plan(learning_rate, stopping, len(x), batch_size, len(validation))
    model = attacker.model
    variables = model.trainable_variables

    @tf.function(reduce_retracing=True)
    def step(inputs, targets):
        with tf.GradientTape() as tape:
            outputs = model(inputs, training=True)
            loss = tf.reduce_mean(tf.cast(attacker.loss(targets, outputs), tf.float32))
        optimizer.apply(tape.gradient(loss, variables), variables)
        return loss, None  # the declared loop does not decode training batches

    augment = getattr(attacker, "augment", None)

    def epoch_batches(rng):
        ex, ey = arrays(fresh(fresh_seed(rng))) if fresh else (x, y)
        order = rng.permutation(len(ex))
        for first in range(0, len(order), batch_size):
            batch = order[first:first + batch_size]
            inputs = ex[batch]
            yield (augment(inputs, rng) if augment else inputs), ey[batch]

    state = fit_loop(model, optimizer, seed=settings.seed, train_count=len(x), epoch_batches=epoch_batches,
                     step=step, validate=lambda: captcha_score(attacker, validation, len(validation)),
                     checkpoint=checkpoint, resume=resume, on_epoch=on_epoch, stopping=stopping,
                     train_score=lambda: captcha_score(attacker, train), validation_count=len(validation),
                     config={"hyperparameters": h, "stopping": asdict(stopping), "batch_size": batch_size,
                             "learning_rate": learning_rate, "seed": settings.seed, "count": len(x),
                             "fresh": fresh is not None})
    return {**seconds_and_rate(state), "batch_size": batch_size, "learning_rate": learning_rate}
