"""NanoDet-m on COCO: the network (the cached GraphDef, weights.py) and its decoding.

The network takes one 416x416 BGR picture, normalised by NanoDet's means and deviations, in NCHW
order; at strides 8, 16 and 32 (52x52, 26x26 and 13x13 points) it gives each point a score per
class (after a sigmoid) and, per side of a box, a distribution over 0-10 strides (generalised
focal loss): the box's distance from the point on that side is the distribution's mean. Pictures
of another size are stretched to 416x416 and the boxes stretched back."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .coco import CLASSES
from .weights import installed

SIDE = 416
MEAN = np.array([103.53, 116.28, 123.675], np.float32)  # BGR, as NanoDet was trained
STD = np.array([57.375, 57.12, 58.395], np.float32)
BINS = 11  # each side's distribution: 0 to 10 strides
# the trunk's features where the heads begin: 128 channels at strides 8, 16 and 32 (padded by one)
FEATURES = ("PartitionedCall/transpose_95:0", "PartitionedCall/transpose_101:0", "PartitionedCall/transpose_107:0")
FEATURE_SIZE = 2 * 128 * len(FEATURES)  # each map's mean and maximum over its points
# (scores output, boxes output, stride) per level, by the graph's output names
LEVELS = (("Identity:0", "Identity_3:0", 8), ("Identity_1:0", "Identity_4:0", 16), ("Identity_2:0", "Identity_5:0", 32))


@dataclass
class Detection:
    label: str  # a COCO class
    score: float
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in the picture's pixels


def framed(tile: np.ndarray, margin: float) -> np.ndarray:
    """A tile inside a grey border `margin` times its side wide (letterbox grey, which detectors are
    trained to ignore): a detector trained on scenes scores an object filling the whole frame lower."""
    border = round(margin * tile.shape[1])
    return cv2.copyMakeBorder(tile, border, border, border, border, cv2.BORDER_CONSTANT, value=(114, 114, 114))


def region_features(maps: list[np.ndarray], region: tuple[float, float, float, float]) -> np.ndarray:
    """Each feature map's mean and maximum over the points in `region` (y0, y1, x0, x1 as shares
    of the picture; at least one point a map): FEATURE_SIZE numbers."""
    out = []
    for m in maps:
        n = m.shape[0]
        y0, x0 = min(int(region[0] * n), n - 1), min(int(region[2] * n), n - 1)
        y1, x1 = max(y0 + 1, int(np.ceil(region[1] * n))), max(x0 + 1, int(np.ceil(region[3] * n)))
        part = m[y0:y1, x0:x1]
        out += [part.mean(axis=(0, 1)), part.max(axis=(0, 1))]
    return np.concatenate(out)


def network_input(picture: np.ndarray) -> np.ndarray:
    """A BGR (or grey) uint8 picture as the network's 1x3x416x416 float32 input."""
    if picture.ndim == 2:
        picture = cv2.cvtColor(picture, cv2.COLOR_GRAY2BGR)
    resized = cv2.resize(picture, (SIDE, SIDE), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    return np.ascontiguousarray(((resized - MEAN) / STD).transpose(2, 0, 1)[None])


def points(stride: int) -> tuple[np.ndarray, np.ndarray]:
    """The centres of a level's points, in input pixels, row by row."""
    n = SIDE // stride
    ys, xs = np.divmod(np.arange(n * n), n)
    return (xs + 0.5) * stride, (ys + 0.5) * stride


def decode(outputs: dict[str, np.ndarray], width: int, height: int, threshold: float) -> list[Detection]:
    """The detections scoring at least `threshold`, boxes in the picture's pixels, overlapping ones
    of a class merged (non-maximum suppression at IoU 0.5)."""
    boxes, scores, labels = [], [], []
    for score_name, box_name, stride in LEVELS:
        score = outputs[score_name][0]
        keep = np.flatnonzero(score.max(axis=1) >= threshold)
        if not len(keep):
            continue
        logits = outputs[box_name][0][keep].reshape(-1, 4, BINS)
        weights = np.exp(logits - logits.max(axis=-1, keepdims=True))
        distance = (weights / weights.sum(axis=-1, keepdims=True)) @ np.arange(BINS) * stride
        cx, cy = (c[keep] for c in points(stride))
        box = np.stack([cx - distance[:, 0], cy - distance[:, 1], cx + distance[:, 2], cy + distance[:, 3]], axis=1)
        boxes.append(box * [width / SIDE, height / SIDE, width / SIDE, height / SIDE])
        scores.append(score[keep].max(axis=1))
        labels.append(score[keep].argmax(axis=1))
    if not boxes:
        return []
    boxes, scores, labels = np.concatenate(boxes), np.concatenate(scores), np.concatenate(labels)
    found = []
    for label in np.unique(labels):
        mine = np.flatnonzero(labels == label)
        xywh = [[x0, y0, x1 - x0, y1 - y0] for x0, y0, x1, y1 in boxes[mine].tolist()]
        for k in np.asarray(cv2.dnn.NMSBoxes(xywh, scores[mine].tolist(), threshold, 0.5)).reshape(-1):
            i = mine[k]
            found.append(Detection(CLASSES[label], float(scores[i]), tuple(float(v) for v in boxes[i])))
    return sorted(found, key=lambda d: -d.score)


class NanoDet:
    """The detector, loaded once from the cached weights (a one-line error when they are not there)."""

    def __init__(self):
        from .tfjs import graph_function

        graph, manifest = installed()
        self.manifest = manifest
        self._names = [name for name, _, _ in LEVELS] + [name for _, name, _ in LEVELS]
        self._run = graph_function(graph, manifest["inputs"], self._names)
        self._features = None

    def outputs(self, picture: np.ndarray) -> dict[str, np.ndarray]:
        """The network's raw outputs for one picture."""
        return dict(zip(self._names, self._run(network_input(picture))))

    def detect(self, picture: np.ndarray, threshold: float = 0.3) -> list[Detection]:
        height, width = picture.shape[:2]
        return decode(self.outputs(picture), width, height, threshold)

    def feature_maps(self, picture: np.ndarray) -> list[np.ndarray]:
        """The pretrained trunk's three feature maps over a picture (52x52, 26x26 and 13x13 points
        of 128 channels, padding removed)."""
        if self._features is None:
            from .tfjs import graph_function

            self._features = graph_function(installed()[0], self.manifest["inputs"], list(FEATURES))
        return [m[0, 1:-1, 1:-1] for m in self._features(network_input(picture))]

    def features(self, picture: np.ndarray) -> np.ndarray:
        """The trunk's description of a whole picture (FEATURE_SIZE numbers: `region_features`)."""
        return region_features(self.feature_maps(picture), (0.0, 1.0, 0.0, 1.0))

    def class_scores(self, picture: np.ndarray) -> np.ndarray:
        """Each COCO class's highest score anywhere in the picture (80 numbers)."""
        raw = self.outputs(picture)
        return np.max([raw[name][0].max(axis=0) for name, _, _ in LEVELS], axis=0)
