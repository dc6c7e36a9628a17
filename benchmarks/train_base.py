"""Train an attacker's shipped base (its BaseRecipe) across sessions: a base that takes longer than
one session to converge (audioctc's: 2.5 minutes an epoch of 11,000 challenges on 2 cores, for
tens of epochs) goes on where the last session stopped. Its checkpoint (weights, optimizer, random state, history; about 3 MB) is copied after
every epoch to benchmarks/checkpoints/<attacker>-<set>/, which is committed so that the next
session, on another machine, resumes from it; once the run converges, the model and its JSON are
copied into captchalab/bases/ and the checkpoint is deleted. An attacker whose base has not
shipped yet does not declare it (every training from `--from base` would train the base first):
its recipe waits here, in PENDING, until then.

    python benchmarks/train_base.py [--attacker audioctc] [--charset digits] [--work results/bases]

Stopping it at any time loses at most the epoch in progress. It prints each epoch's record.
"""

import argparse
import json
import shutil
import time
from pathlib import Path

from publish import REPO

from captchalab.attackers import BaseRecipe
from captchalab.charset import parse_charset
from captchalab.plugins import get_attacker
from captchalab.pretrained import SHIPPED, base_path, ensure_base
from captchalab.training.checkpoints import checkpoint_dir

KEPT = REPO / "benchmarks" / "checkpoints"
# recipes of bases still in training, by attacker (audioctc's shipped on 2026-12-07 after two sessions)
PENDING: dict[str, BaseRecipe] = {}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--attacker", default="audioctc")
    parser.add_argument("--charset", default="digits")
    parser.add_argument("--work", default="results/bases")
    args = parser.parse_args()
    charset = parse_charset(args.charset)
    attacker = get_attacker(args.attacker)
    if attacker.base is None and args.attacker in PENDING:
        attacker.base = PENDING[args.attacker]
    models = Path(args.work) / "models"
    models.mkdir(parents=True, exist_ok=True)
    path = base_path(args.attacker, charset, models)
    kept, running = KEPT / path.stem, checkpoint_dir(path)
    if (kept / "state.json").is_file() and not (running / "state.json").is_file():
        shutil.copytree(kept, running, dirs_exist_ok=True)  # an earlier session's run goes on

    def on_epoch(epoch: int, record: dict) -> None:
        print(time.strftime("%H:%M:%S"), json.dumps({"epoch": epoch, **record}), flush=True)
        shutil.copytree(running, kept, dirs_exist_ok=True)

    found = ensure_base(args.attacker, charset, lambda m: print(m, flush=True), models, on_epoch=on_epoch)
    if found.parent != models:
        print(f"{found} exists already: nothing to train")
        return
    info = json.loads(found.with_suffix(".json").read_text())
    verdict = info.get("convergence", {})
    print(json.dumps({k: info.get(k) for k in ("val_accuracy", "epochs_run", "train_seconds")}), verdict)
    if verdict.get("converged"):
        for suffix in (".keras", ".json"):
            shutil.copy2(found.with_suffix(suffix), SHIPPED / found.with_suffix(suffix).name)
        shutil.rmtree(kept, ignore_errors=True)
        print(f"shipped as {SHIPPED / found.name}; add it to captchalab/bases/README.md")
    else:
        print("not converged: not shipped")


if __name__ == "__main__":
    main()
