"""When a converging run stops, and the verdict on it.

A run converges when its CAPTCHA-level validation score stops improving: a warm-up, then a
constant learning rate cut by `factor` whenever the score has not improved for `patience` epochs;
after `reductions` cuts, the next plateau ends the run. A plateau neither cuts nor ends a run that
still underfits and reads more of its own training CAPTCHAs than at its last plateau
(loop.still_fitting). A budget of examples seen (deterministic)
bounds it, and an optional wall-clock limit; a run either of them stops is not converged, nor one
with too few validation CAPTCHAs to decide (MIN_VALIDATION), nor one that cannot read its own
training CAPTCHAs (UNDERFIT).
"""

from __future__ import annotations

import math
import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import CaptchalabError

UNDERFIT = 0.9  # training CAPTCHAs read right below this share: the model underfits
MIN_VALIDATION = 300  # fewer validation CAPTCHAs than this cannot decide when to stop


@dataclass(frozen=True)
class Stopping:
    """When a converging run ends (see the module's docstring)."""

    budget: int  # examples seen at most
    patience: int = 3  # epochs without a validation gain before the rate is cut
    reductions: int = 2  # cuts before a plateau ends the run
    factor: float = 0.3  # each cut multiplies the learning rate by this
    warmup_epochs: float = 0.5
    wall_seconds: float | None = None  # a wall-clock limit; a run it stops is flagged
    # a run its budget decides (too few validation CAPTCHAs) may run its budget again, up to this
    # many examples, while it underfits and its training accuracy still rises (loop.still_fitting):
    # a small set's budget is meant for a fine-tune, not for a reader that starts from nothing
    ceiling: int | None = None

    def check(self) -> None:
        if self.budget < 1:
            raise CaptchalabError(f"the training budget must be at least 1 example, got {self.budget}")
        if self.patience < 1 or self.reductions < 0 or not 0 < self.factor < 1:
            raise CaptchalabError("patience must be at least 1, reductions at least 0 and factor in (0, 1)")
        if self.wall_seconds is not None and self.wall_seconds <= 0:
            raise CaptchalabError(f"the wall-clock limit must be positive, got {self.wall_seconds}")

    def epochs(self, train_count: int) -> int:
        return max(1, math.ceil(self.budget / max(train_count, 1)))

    def most_epochs(self, train_count: int) -> int:
        """The epochs its ceiling allows (its budget's, without one)."""
        return max(self.epochs(train_count), math.ceil((self.ceiling or 0) / max(train_count, 1)))


def decisive(validation_count: int | None) -> bool:
    """Whether this many validation CAPTCHAs can decide when a run stops (None: a fixed recipe's
    own held-out count, which always may)."""
    return validation_count is None or validation_count >= MIN_VALIDATION


def validation_size(count: int) -> int:
    """How many of `count` labelled CAPTCHAs are held out to decide when to stop: a tenth, at most
    1,000 (the 95% interval of an accuracy near 90% is then +-1.9 points). Below MIN_VALIDATION
    the run is flagged: the budget, not the validation score, decides."""
    return 0 if count < 2 else max(1, min(round(0.1 * count), 1000))


def stopping_for(
    settings,
    hparams: dict,
    train_count: int,
    validation_count: int,
    budget: int,
    small_set_budget: int,
    warmup_epochs: float = 0.5,
) -> Stopping:
    """The stopping rule of one training run: `--budget`, else `--epochs` passes over the training
    set, else the attacker's `budget`; but where too few CAPTCHAs are held out to decide
    (fewer than MIN_VALIDATION), the budget itself decides, so a smaller one (`small_set_budget`)
    runs whole, and again while the run underfits and still learns (up to `budget`: a small set's
    budget suits a fine-tune, not a reader that starts from nothing). An `epochs` hyper-parameter
    caps the passes either way."""
    ceiling = None
    if getattr(settings, "budget", None) is not None:
        chosen = settings.budget
    elif settings.epochs:
        chosen = settings.epochs * train_count
    elif decisive(validation_count):
        chosen = budget
    else:
        chosen, ceiling = small_set_budget, budget
    if "epochs" in hparams:
        chosen = min(chosen, hparams["epochs"] * train_count)
        ceiling = ceiling and min(ceiling, hparams["epochs"] * train_count)
    return Stopping(
        chosen,
        hparams.get("patience", 3),
        warmup_epochs=warmup_epochs,
        wall_seconds=getattr(settings, "wall_seconds", None),
        ceiling=ceiling if ceiling and ceiling > chosen else None,
    )


def convergence(
    state: dict, validation_count: int | None, train_accuracy: float | None, stopping: Stopping | None
) -> dict:
    """The verdict on a finished run: converged means the validation score had stopped improving
    (a plateau, after every rate cut), with enough validation CAPTCHAs to tell, and the model reads
    its own training CAPTCHAs (no underfitting). Anything else is flagged with its reasons."""
    record = {
        "train_accuracy": train_accuracy,
        "validation_count": validation_count,
        "examples_seen": state["images_seen"],
        "rate_cuts": state["reductions"],
        "validation_curve": [r["val_accuracy"] for r in state["history"]],
        "budget": stopping.budget if stopping else None,
    }
    if stopping is None:  # the seed's network on characters: a recipe judged on its own test set
        return {
            "converged": None,
            "stopped": "recipe",
            "underfit": False,
            "reasons": ["a fixed recipe of epochs, judged by its test-set accuracy"],
            **record,
        }
    reasons = []
    budget_ran = state["stopped"] != "time limit"  # a run the clock stopped did not run its budget out
    if not budget_ran:
        reasons.append(
            f"stopped by the wall-clock limit after {state['epoch']} epochs ({state['images_seen']:,} "
            "examples" + (f" of its budget of {stopping.budget:,}" if stopping.budget else "") + ")"
        )
    if state["best_val_accuracy"] is None:
        reasons.append("nothing was held out to decide on" + (": its budget decided" if budget_ran else ""))
    elif not decisive(validation_count):
        cycles = state.get("cycles", 1)
        reasons.append(
            f"only {validation_count} validation CAPTCHAs (fewer than {MIN_VALIDATION}): too few "
            "to decide when to stop"
            + (f", so its whole budget ran ({state['images_seen']:,} examples)" if budget_ran else "")
            + (f", {cycles} times over: its training accuracy still rose" if cycles > 1 else "")
        )
    elif state["stopped"] == "budget":
        reasons.append(
            f"still improving when its budget ended ({state['images_seen']:,} examples, "
            f"{state['epoch']} epochs; best at epoch {state['best_epoch']})"
        )
    underfit = train_accuracy is not None and train_accuracy < UNDERFIT
    if underfit:
        reasons.append(f"underfitting: it reads only {train_accuracy:.1%} of its own training CAPTCHAs")
    return {"converged": not reasons, "stopped": state["stopped"], "reasons": reasons, "underfit": underfit, **record}


def same_training(parent: dict, described: dict, fresh: bool, unlabelled_info) -> bool:
    """Whether a run trained on the very CAPTCHAs its starting model was trained on (the same
    source, drawn the same way, no unlabelled ones added): then it extends that run."""

    def drawn(source):  # what decides the CAPTCHAs: the resolved parameters (overrides are in them)
        if isinstance(source, dict):
            return {k: drawn(v) for k, v in source.items() if k != "overrides"}
        return [drawn(v) for v in source] if isinstance(source, list) else source

    return (
        parent.get("task") == "captcha"
        and bool(parent.get("fresh_every_epoch")) == fresh
        and drawn(parent.get("source")) == drawn(json.loads(json.dumps(described, default=str)))
        and not parent.get("unlabelled")
        and not unlabelled_info
    )


def inherited(verdict: dict | None, parent: dict | None, extends: bool = False) -> dict:
    """A run's convergence verdict, carrying on the flag of an unconverged model it started from
    (a fine-tune of a weak attacker is no proof of a strong one), unless the run `extends` the
    parent's, training on to its own verdict on the same CAPTCHAs (what one longer run would
    have done)."""
    verdict = dict(verdict or {"converged": None, "reasons": ["its own fit() gave no convergence verdict"]})
    before = (parent or {}).get("convergence") or {}
    name = Path((parent or {}).get("path", "a model")).name
    if parent and extends:
        verdict["extends"] = name
    elif parent and parent.get("task") == "captcha" and before.get("converged") is False:
        verdict["converged"] = False
        verdict["reasons"] = list(verdict.get("reasons", [])) + [
            f"started from {name}, which had not converged "
            f"({'; '.join(before.get('reasons') or ['no reason recorded'])})"
        ]
    return verdict
