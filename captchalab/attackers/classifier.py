"""`classifier`: your own pretrained image classifier as an image-grid reader, off the shelf.

No ImageNet weights can be had offline here, so this is the seam for the ones a researcher holds:
a Keras model (.keras, loaded with safe_mode) or an ONNX model (run by onnxruntime, installed
with `captchalab[ddddocr]`), and a text file of its output labels, one per line, in output order.
Each tile is resized to the model's input size and scaled as it was trained; a tile's probability
of showing the prompt is the summed probability of the labels that name it: by default every
label containing the prompt as a word ("bus" -> "school bus", "trolleybus" does not count), or
those a map file gives (`prompt: label; label` per line).

    captchalab attack --attacker "classifier:model=net.onnx,labels=labels.txt,layout=nchw" --dataset D
"""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np

from ..errors import CaptchalabError
from ..kinds import format_tiles
from .base import Attacker, Param, Reading, register_attacker, softmax
from .tile_inputs import cut

SCALES = {"0-1": (0.0, 1 / 255.0), "-1-1": (127.5, 1 / 127.5), "0-255": (0.0, 1.0)}
IMAGENET_MEAN, IMAGENET_STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])


def _text(path: str, what: str) -> str:
    if not path:
        raise CaptchalabError(f"classifier needs {what}")
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CaptchalabError(f"classifier: cannot read {path} ({getattr(exc, 'strerror', None) or exc})") from None


@register_attacker
class Classifier(Attacker):
    name = "classifier"
    kind = "grid"
    trainable = False
    description = (
        "Your own pretrained image classifier (a .keras or .onnx file and its labels) on each tile "
        "of an image grid, off the shelf."
    )
    params = (
        Param("model", str, "", help="the classifier: a .keras or .onnx file"),
        Param("labels", str, "", help="a text file of its output labels, one per line, in output order"),
        Param("map", str, "", help="optional: a file of 'prompt: label; label' lines naming the labels of a prompt"),
        Param("size", int, 224, 8, 1024, "the model's input side in pixels"),
        Param("scale", str, "imagenet", help="input scaling: imagenet (mean/std), 0-1, -1-1 or 0-255"),
        Param("layout", str, "nhwc", help="input layout: nhwc (Keras) or nchw (most ONNX exports)"),
        Param("threshold", float, 0.5, 0.01, 0.99, "select a tile when the prompt's probability is at least this"),
    )

    def prepare(self, image, question):
        rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        return {"tiles": cut(rgb, question["grid"], self.hparams["size"]), "prompt": question["prompt"]}

    def _load(self):
        """The model, its labels and the prompt map, once per process (never in worker processes)."""
        if getattr(self, "_run", None) is not None:
            return
        h = self.hparams
        if h["scale"] not in (*SCALES, "imagenet") or h["layout"] not in ("nhwc", "nchw"):
            raise CaptchalabError("classifier: scale must be imagenet, 0-1, -1-1 or 0-255, layout nhwc or nchw")
        self._labels = [
            line.strip() for line in _text(h["labels"], "labels=FILE (its output labels)").splitlines() if line.strip()
        ]
        self._map = {}
        if h["map"]:
            for line in _text(h["map"], "a readable map file").splitlines():
                prompt, sep, labels = line.partition(":")
                if sep:
                    self._map[prompt.strip()] = [x.strip() for x in labels.split(";") if x.strip()]
        path = Path(h["model"])
        if not h["model"] or not path.is_file():
            raise CaptchalabError(f"classifier: model file {h['model'] or '(none given: model=FILE)'} does not exist")
        if path.suffix == ".onnx":
            try:
                import onnxruntime
            except ImportError:
                raise CaptchalabError(
                    "classifier: ONNX models need onnxruntime (pip install 'captchalab[ddddocr]')"
                ) from None
            try:
                session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            except Exception as exc:  # onnxruntime raises its own types for a bad file
                raise CaptchalabError(
                    f"classifier: {path} is not a loadable ONNX model ({str(exc).splitlines()[0][:160]})"
                ) from None
            name = session.get_inputs()[0].name
            self._run = lambda x: session.run(None, {name: x})[0]
        else:
            from ..model import load_keras_model

            model = load_keras_model(path)
            self._run = lambda x: np.asarray(model(x, training=False))

    def _inputs(self, tiles: np.ndarray) -> np.ndarray:
        x = tiles.astype(np.float32)
        if self.hparams["scale"] == "imagenet":
            x = (x / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
        else:
            offset, factor = SCALES[self.hparams["scale"]]
            x = (x - offset) * factor
        x = x.astype(np.float32)
        return x.transpose(0, 3, 1, 2) if self.hparams["layout"] == "nchw" else x

    def labels_of(self, prompt: str) -> list[int]:
        """The output labels that name `prompt`: the map's, else those containing it as a word."""
        if prompt in self._map:
            return [k for k, label in enumerate(self._labels) if label in self._map[prompt]]
        word = re.compile(rf"\b{re.escape(prompt.lower())}s?\b")
        return [k for k, label in enumerate(self._labels) if word.search(label.lower())]

    def read_prepared(self, batch):
        self._load()
        readings = []
        for prepared in batch:
            chosen_labels = self.labels_of(prepared["prompt"])
            if not chosen_labels:
                readings.append(Reading("", [], details={"tile_probabilities": None, "unknown_prompt": True}))
                continue
            scores = np.asarray(self._run(self._inputs(prepared["tiles"])), np.float64)
            if scores.ndim != 2 or scores.shape[1] != len(self._labels):
                raise CaptchalabError(
                    f"classifier: the model gives {scores.shape[-1]} outputs for {len(self._labels)} labels"
                )
            if scores.min() < 0 or not np.allclose(scores.sum(axis=1), 1, atol=1e-3):  # logits: make probabilities
                scores = softmax(scores)
            p = scores[:, chosen_labels].sum(axis=1)
            chosen = [k for k, v in enumerate(p) if v >= self.hparams["threshold"]]
            readings.append(
                Reading(
                    format_tiles(chosen),
                    [float(p[k]) for k in chosen],
                    details={"tile_probabilities": [round(float(v), 4) for v in p]},
                )
            )
        return readings
