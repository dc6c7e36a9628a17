"""Semi-supervised training: a mean teacher reads unlabelled CAPTCHAs, and the readings it is sure
of join the training set (`PseudoLabelling`); `TeacherStage` is the two-stage bookkeeping the
attackers that declare `semi_supervised` share."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable


@dataclass(frozen=True)
class PseudoLabelling:
    """Semi-supervised training on unlabelled CAPTCHAs (the second stage of GeeSolver, IEEE S&P
    2023): a teacher whose weights are an exponential moving average of the student's reads the
    unlabelled CAPTCHAs before every epoch; those it reads with every character at least
    `threshold` confident join that epoch's training set under the teacher's reading, the most
    confident first, at most `per_labelled` for each labelled CAPTCHA, so the labels keep their
    share of every epoch (and an epoch's cost stays near twice the labelled one)."""

    threshold: float = 0.9
    decay: float = 0.99  # per training step: teacher = decay * teacher + (1 - decay) * student
    per_labelled: float = 1.0

    def choose(self, readings, labelled: int, charset: str, max_length: int) -> list[int]:
        """Which readings become this epoch's pseudo-labels: confident ones, the likeliest first,
        at most `per_labelled` x `labelled` of them, in their original order."""
        chosen = confident(readings, self.threshold, charset, max_length)
        chosen.sort(key=lambda k: -min(readings[k].confidence))
        return sorted(chosen[: int(self.per_labelled * labelled)])


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
        return {
            **result,
            "pseudo_labelling": {
                **asdict(self.pseudo),
                "unlabelled": unlabelled_count,
                "unit": unit,
                "pseudo_labelled_per_epoch": [r["pseudo_labelled"] for r in history],
            },
            "supervised_stage": {
                k: self.labelled[k] for k in ("epochs_run", "val_accuracy", "convergence", "train_seconds")
            },
            "train_seconds": round(result["train_seconds"] + self.labelled["train_seconds"], 2),
        }


def confident(readings, threshold: float, charset: str, max_length: int = 8) -> list[int]:
    """Indices of the readings a pseudo-label may come from: a non-empty text of the charset, no
    longer than `max_length`, every character at least `threshold` confident."""
    return [
        k
        for k, r in enumerate(readings)
        if r.text
        and len(r.text) <= max_length
        and all(c in charset for c in r.text)
        and len(r.confidence) == len(r.text)
        and min(r.confidence) >= threshold
    ]


def mean_teacher(student, teacher, decay: float) -> Callable[[], None]:
    """A compiled update moving each teacher weight towards the student's: t = decay t + (1 - decay) s."""
    import tensorflow as tf

    pairs = list(zip(teacher.weights, student.weights))

    @tf.function
    def update():
        for t, s in pairs:
            t.assign(decay * t + (1.0 - decay) * tf.cast(s, t.dtype))

    return update
