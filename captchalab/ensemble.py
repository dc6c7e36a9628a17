"""One reader from several trained ones (`captchalab ensemble`): their networks side by side in one
.keras file, their scores averaged, so it reads, attacks, sweeps and perturbs like any model of
that attacker. An attacker qualifies by declaring `ensembles` (its reading depends on its
network's scores alone, and scores can be averaged: the logits, so a sure member weighs more)."""

from __future__ import annotations

import time
from pathlib import Path

from .attackers.base import load_attacker, split_model_spec
from .errors import CaptchalabError
from .fileio import refuse_existing
from .manifest import make_manifest, sha256_bytes
from .score import attacker_state
from .train import check_model_path, finish

# what members must share: they read the same CAPTCHAs the same way
SHARED = ("attacker", "kind", "charset", "classes", "input")


def merged_convergence(members: list) -> dict:
    """The ensemble's verdict, from each member attacker's state (score.attacker_state): converged
    when every member did; each other member's reasons otherwise."""
    states = [attacker_state(m) for m in members]
    reasons = [
        f"member {k + 1}: {reason}"
        for k, state in enumerate(states)
        if state["converged"] is not True
        for reason in state["reasons"]
    ]
    converged = all(state["converged"] is True for state in states)
    return {
        "converged": converged,
        "stopped": "every one converged" if converged else "a member did not",
        "reasons": reasons,
        "underfit": any((m.info.get("convergence") or {}).get("underfit") for m in members),
    }


def ensemble_models(paths, out, force: bool = False, plugin_dirs=()) -> dict:
    """Write `out` (.keras and its JSON): the trained attackers at `paths`, two or more of one
    attacker that declares `ensembles`, reading the same classes from the same input, as one
    model whose scores are the mean of theirs. Its JSON is the first member's reading settings
    (hyper-parameters, answer sizes), the members (file, SHA-256, verdict) and a verdict that is
    converged only when every member's is. Returns that JSON."""
    import keras

    wall_start = time.perf_counter()
    out = check_model_path(out)
    if any(split_model_spec(p)[1] for p in paths):
        raise CaptchalabError("give the members' files alone: reading settings (M.keras:tta=8) apply when the ensemble is loaded")  # fmt: skip
    paths = [Path(p) for p in paths]
    if len(paths) < 2:
        raise CaptchalabError("an ensemble needs at least two `models`")
    if out.resolve() in {p.resolve() for p in paths}:
        raise CaptchalabError(f"`out` {out} is one of the members: write the ensemble to another file")
    refuse_existing(out, force)
    members = [load_attacker(p, plugin_dirs) for p in paths]
    first = members[0]
    if not first.ensembles:
        raise CaptchalabError(
            f"attacker {first.name!r} does not declare that its scores can be averaged "
            "(ensembles): it cannot make an ensemble"
        )
    for path, member in zip(paths[1:], members[1:]):
        differs = [f for f in SHARED if member.info.get(f) != first.info.get(f)]
        if differs:
            raise CaptchalabError(
                f"{path} differs from {paths[0]} in {', '.join(differs)}: an ensemble's "
                "members read the same CAPTCHAs the same way"
            )
    inputs = keras.Input(first.model.input_shape[1:], name="input")
    # each member's network under its own name (their layers keep theirs inside)
    scores = [
        keras.Model(m.model.inputs[0], m.model.outputs[0], name=f"member{k + 1}")(inputs) for k, m in enumerate(members)
    ]
    model = keras.Model(inputs, keras.layers.Average(name="mean", dtype="float32")(scores), name="ensemble")
    described = [
        {
            "model": str(p),
            "sha256": sha256_bytes(p.read_bytes()),
            "val_accuracy": m.info.get("val_accuracy"),
            "convergence": m.info.get("convergence"),
        }
        for p, m in zip(paths, members)
    ]
    reading = {
        f: first.info[f] for f in (*SHARED, "charset_name", "hyperparameters", "answer_sizes") if f in first.info
    }
    scraped = [m.info["unlabelled"] for m in members if m.info.get("unlabelled")]
    if scraped:  # what a member saw unlabelled, the ensemble has seen: attack refuses those images
        reading["unlabelled"] = {
            "folder": "; ".join(sorted({s.get("folder", "") for s in scraped})),
            "image_sha256": sorted({h for s in scraped for h in s.get("image_sha256") or ()}),
        }
    info = {
        **reading,
        "task": "ensemble",
        "ensemble": {"members": described},
        "convergence": merged_convergence(members),
        "manifest": make_manifest("model", task="ensemble", members=described, attacker=first.name),
    }
    return finish(model, out, info, wall_start)
