"""`captchalab adversarial`: do adversarial CAPTCHAs work, and do they survive?

On the same CAPTCHAs, for every eps: the white-box accuracy of the target attacker, the accuracy
of every other attacker (transfer), the accuracy after each defence (preprocessing before
reading), a readability proxy (PSNR and SSIM against the clean image) and, with `retrain`, the
target fine-tuned on adversarial CAPTCHAs and attacked again through its new gradients.
"""

from __future__ import annotations

import re
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from ..attackers.base import TrainSettings, load_attacker, make_attacker
from ..data.dataset import GenerationSpec, Source, generate_dataset, read_dataset
from ..errors import CaptchalabError
from ..fileio import atomic_dir
from ..generation.adversarial import PerturbSpec, check_target, dataset_transform, perturb
from ..humans.designs import design, design_key
from ..humans.frontier import human_results
from ..manifest import make_manifest, sha256_bytes
from ..score import attacker_state
from ..train import train_attacker
from .report import write_adversarial_report

DEFENCES = {
    "median": "median filter of k x k pixels",
    "jpeg": "JPEG at quality q",
    "bits": "colour depth reduced to b bits per channel",
    "blur": "Gaussian blur of sigma s pixels",
}


def parse_defences(text: str) -> list[str]:
    names = [t.strip() for t in text.split(",") if t.strip()]
    for name in names:
        match = re.fullmatch(r"(median|jpeg|bits|blur)(\d+(?:\.\d+)?)", name)
        if not match:
            raise CaptchalabError(f"`defences`: unknown defence {name!r} (use median3, jpeg75, bits4, blur1 ...)")
        defence, value = match.group(1), float(match.group(2))
        if (
            (defence == "median" and (value < 3 or value % 2 == 0))
            or (defence == "jpeg" and not 1 <= value <= 100)
            or (defence == "bits" and not 1 <= value <= 8)
            or (defence == "blur" and not 0 < value <= 10)
        ):
            raise CaptchalabError(f"`defences`: {name!r} is out of range ({defence}: {DEFENCES[defence]})")
    return names


def defend(image: np.ndarray, name: str) -> np.ndarray:
    """Apply one defence (as parsed by parse_defences) to a BGR uint8 image."""
    defence, value = re.fullmatch(r"([a-z]+)([\d.]+)", name).groups()
    if defence == "median":
        return cv2.medianBlur(image, int(value))
    if defence == "jpeg":
        return cv2.imdecode(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(value)])[1], cv2.IMREAD_COLOR)
    if defence == "bits":
        shift = 8 - int(value)
        return ((image >> shift) << shift) + ((1 << shift) >> 1)
    return cv2.GaussianBlur(image, (0, 0), float(value))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Structural similarity of the grey images (Gaussian window, sigma 1.5; Wang et al. 2004)."""
    x = cv2.cvtColor(a, cv2.COLOR_BGR2GRAY).astype(np.float64)
    y = cv2.cvtColor(b, cv2.COLOR_BGR2GRAY).astype(np.float64)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    blur = lambda m: cv2.GaussianBlur(m, (11, 11), 1.5)
    mx, my = blur(x), blur(y)
    sxx, syy, sxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    m = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx**2 + my**2 + c1) * (sxx + syy + c2))
    return float(m.mean())


@dataclass
class AdversarialConfig:
    spec: GenerationSpec  # the clean CAPTCHAs (count = how many)
    target: str  # model file of a differentiable attacker
    transfer: list[str] = field(default_factory=list)  # other model files
    readers: list[str] = field(default_factory=list)  # read-only attackers by name
    eps: list[float] = field(default_factory=lambda: [0, 2, 4, 8, 16])
    method: str = "pgd"
    steps: int = 10
    defences: list[str] = field(default_factory=lambda: ["median3", "jpeg75", "bits4", "blur1"])
    retrain: bool = False
    retrain_count: int = 2000
    retrain_eps: float | None = None  # default: the largest eps
    retrain_budget: int | None = None  # examples the fine-tune sees at most (None: the attacker's)
    batch: int = 32
    humans: list[str] = field(default_factory=list)  # human-study folders with answers on these designs


def perturb_all(attacker, images, texts, boxes, spec: PerturbSpec, batch: int = 32) -> list[np.ndarray]:
    out = []
    for start in range(0, len(images), batch):
        part = slice(start, start + batch)
        out += perturb(attacker, images[part], texts[part], boxes[part], spec, start)
    return out


def accuracy(attacker, images, texts, length) -> float:
    readings = attacker.read(images, length)
    return float(np.mean([r.text == t for r, t in zip(readings, texts)])) if texts else 0.0


def run_adversarial(
    config: AdversarialConfig,
    out: Path,
    say: Callable[[str], None] = lambda m: None,
    plugin_dirs=(),
    force: bool = False,
) -> dict:
    """Measure everything for every eps; write report.json/md/html and plots into `out`."""
    start = time.perf_counter()
    target = load_attacker(config.target, list(plugin_dirs))
    check_target(target)
    config.spec.check()
    source = Source(spec=config.spec)
    source.check_charset(target.charset, target.label())
    others = [load_attacker(m, list(plugin_dirs)) for m in config.transfer]
    others += [make_attacker(spec, config.spec.charset, list(plugin_dirs)) for spec in config.readers]
    for other in others:
        source.check_charset(other.charset, other.label())
    samples = [source.sample(i) for i in range(len(source))]
    images, texts, boxes = [s.image for s in samples], [s.text for s in samples], [s.boxes for s in samples]
    length = source.fixed_length()
    rows, sheet = [], []
    with atomic_dir(out, force, ours="report.json") as tmp:
        for eps in config.eps:
            row, adv = _measure_eps(config, eps, target, others, images, texts, boxes, length)
            rows.append(row)
            sheet.append((eps, adv[:4]))
            say(
                f"eps {eps:g}/255: white-box {row['accuracy'][target.label()]:.1%}; "
                + ", ".join(f"{k} {v:.1%}" for k, v in row["accuracy"].items() if k != target.label())
            )
        retrained = None
        if config.retrain:
            retrained = _retrain(config, target, images, texts, boxes, length, tmp, say, plugin_dirs)
        report = {
            "kind": "adversarial",
            "style": config.spec.style,
            "strength": config.spec.strength,
            "parameters": config.spec.check(),
            "count": len(images),
            "target": target.label(),
            "method": config.method,
            "steps": config.steps,
            "attackers": [a.label() for a in [target] + others],
            "defences": config.defences,
            "states": {a.label(): attacker_state(a) for a in [target] + others},
            "rows": rows,
            "retrained": retrained,
            "seconds": round(time.perf_counter() - start, 1),
            "manifest": make_manifest(
                "report",
                command="adversarial",
                config=asdict(config),
                target_sha256=sha256_bytes(Path(config.target).read_bytes()),
            ),
        }
        if config.humans:
            add_human_results(report, [Path(h) for h in config.humans])
        write_adversarial_report(tmp, report, images[:4], sheet)
    return report


def _measure_eps(config, eps: float, target, others: list, images, texts, boxes, length) -> tuple[dict, list]:
    """One eps: the CAPTCHAs perturbed against the target, every attacker's accuracy on them, bare
    and behind each defence, and how far they moved (PSNR, SSIM, the largest change)."""
    start = time.perf_counter()
    spec = PerturbSpec(config.method, eps, config.steps, seed=config.spec.seed)
    adv = perturb_all(target, images, texts, boxes, spec, config.batch)
    took = time.perf_counter() - start
    row = {
        "eps": eps,
        "eps_fraction": f"{eps:g}/255",
        "seconds_to_perturb": round(took, 2),
        "captchas_per_second": round(len(adv) / took, 1) if eps and took else None,
        "psnr_db": round(float(np.mean([psnr(a, c) for a, c in zip(adv, images)])), 2) if eps else None,
        "ssim": round(float(np.mean([ssim(a, c) for a, c in zip(adv, images)])), 4),
        "max_change": int(max(np.abs(a.astype(int) - c.astype(int)).max() for a, c in zip(adv, images))),
        "accuracy": {},
        "defended": {},
    }
    for attacker in [target] + others:
        row["accuracy"][attacker.label()] = accuracy(attacker, adv, texts, length)
        row["defended"][attacker.label()] = {
            d: accuracy(attacker, [defend(a, d) for a in adv], texts, length) for d in config.defences
        }
    return row, adv


def add_human_results(report: dict, studies: list[Path]) -> None:
    """People's success at each eps whose design they answered (a dataset generated with the same
    style, parameters and strength, perturbed at that eps), into the report's rows."""
    found, left_out = human_results(studies)
    for row in report["rows"]:
        h = found.get(design_key(design(report["style"], report["parameters"], report["strength"], row["eps"])))
        row["humans"] = (
            None
            if h is None
            else {
                k: h[k]
                for k in (
                    "human_success",
                    "human_success_ci95",
                    "human_answers",
                    "human_median_seconds",
                    "simulated",
                    "too_few_answers",
                )
            }
        )
    report["humans_left_out"] = left_out


def _retrain(config, target, images, texts, boxes, length, tmp: Path, say, plugin_dirs) -> dict:
    """Adversarial training: fine-tune the target on clean and adversarial CAPTCHAs made against
    it, then attack the new model through its own gradients on the same test CAPTCHAs."""
    eps = config.retrain_eps if config.retrain_eps is not None else max(config.eps)
    train_spec = replace(config.spec, count=config.retrain_count, seed=config.spec.seed + 7919)
    say(f"adversarial training: {config.retrain_count} CAPTCHAs, half perturbed at eps {eps:g}/255")
    with tempfile.TemporaryDirectory(prefix="captchalab-advtrain-") as work:
        work = Path(work)
        half = replace(train_spec, count=config.retrain_count // 2)
        spec = PerturbSpec(config.method, eps, config.steps, seed=train_spec.seed)
        generate_dataset(half, work / "adv", transform=dataset_transform(target, spec, config.target))
        generate_dataset(
            replace(train_spec, seed=train_spec.seed + 1, count=config.retrain_count - half.count), work / "clean"
        )
        merged = work / "merged"
        merged.mkdir()
        rows = []
        for part in ("adv", "clean"):
            for line in (work / part / "labels.csv").read_text().splitlines()[1:]:
                name, text = line.split(",")
                (work / part / name).rename(merged / f"{part}-{name}")
                rows.append(f"{part}-{name},{text}")
        (merged / "labels.csv").write_text("filename,text\n" + "\n".join(rows) + "\n")
        fresh = type(target)(target.charset, target.hparams)
        out = tmp / "retrained.keras"
        info = train_attacker(
            fresh,
            Source(dataset=read_dataset(merged, target.charset)),
            out,
            TrainSettings(seed=train_spec.seed, budget=config.retrain_budget),
            Path(config.target),
            workers=0,
            plugin_dirs=plugin_dirs,
        )
    model = load_attacker(out, list(plugin_dirs))
    curve = {}
    for e in config.eps:
        adv = perturb_all(
            model,
            images,
            texts,
            boxes,
            PerturbSpec(config.method, e, config.steps, seed=config.spec.seed),
            config.batch,
        )
        curve[f"{e:g}"] = accuracy(model, adv, texts, length)
        say(f"retrained model, eps {e:g}/255: white-box {curve[f'{e:g}']:.1%}")
    return {
        "eps": eps,
        "train_count": config.retrain_count,
        "val_accuracy": info["val_accuracy"],
        "white_box_accuracy": curve,
        "model": "retrained.keras",
    }
