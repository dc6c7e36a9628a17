"""`segment`: the seed's pipeline. OpenCV cuts the CAPTCHA into characters (segmenter.py), each
becomes an MNIST-style 28x28 crop, and the seed's deep LeNet network reads the crops.

It trains on the crops of CAPTCHAs that were cut into exactly as many pieces as their label has
characters, starting by default from a network that already reads characters (MNIST for digits,
`train chars` for other sets).
"""

from __future__ import annotations

import cv2
import numpy as np

from ..errors import CaptchalabError
from ..model import TrainConfig, build_model, check_network, evaluate, predict_proba, train_network
from ..pixels import GREY, MARGIN_CAP, pad_batch, resize_matrix
from ..registry import Param
from ..training import run_record, stopping_for
from .base import Attacker, BaseRecipe, Reading, captcha_score, register_attacker
from .segmenter import cut_characters, ink_mask

SOFT_RAMP = 32.0  # grey levels either side of the threshold over which the soft ink map rises


@register_attacker
class Segment(Attacker):
    name = "segment"
    description = "OpenCV segmentation into 28x28 crops, read by the seed's deep LeNet network."
    uses_length = True
    differentiable = True  # through a differentiable crop-and-resize of known boxes
    base = BaseRecipe(trained_on="characters")  # MNIST for digits, `train chars` for other sets
    views = frozenset({"layers"})
    output_layer = "fc2"
    params = (
        Param("budget", int, 400_000, 1, 10**9, "training crops seen at most (the run ends sooner when it converges)"),
        Param("epochs", int, 1000, 1, 10**6, "passes over the training crops at most"),
        Param("batch_size", int, 128, 1, 4096, "training batch size"),
        Param("learning_rate", float, 1e-3, 1e-6, 1.0, "peak learning rate when fine-tuning (3x from scratch)"),
        Param("label_smoothing", float, 0.1, 0.0, 0.5, "label smoothing"),
        Param("max_rotate", float, 6.0, 0.0, 45.0, "augmentation: largest rotation, degrees"),
        Param("max_shift", float, 1.5, 0.0, 6.0, "augmentation: largest shift, pixels"),
        Param("max_scale", float, 0.08, 0.0, 0.5, "augmentation: largest relative scale change"),
        Param(
            "patience",
            int,
            3,
            1,
            100,
            "epochs without a CAPTCHA-level validation gain before the "
            "learning rate is cut (after two cuts, the run ends)",
        ),
    )

    def prepare(self, image, length):
        seg = cut_characters(image, length)
        return seg.crops, seg.boxes

    def read_prepared(self, batch):
        crops = [c for c, _ in batch]
        probs = predict_proba(self.model, np.concatenate(crops)) if sum(map(len, crops)) else None
        readings, start = [], 0
        for c, boxes in batch:
            p = probs[start : start + len(c)] if len(c) else np.zeros((0, len(self.charset)))
            start += len(c)
            readings.append(
                Reading(
                    "".join(self.charset[i] for i in p.argmax(axis=1)),
                    [round(float(v), 4) for v in p.max(axis=1)],
                    list(boxes),
                    c,
                )
            )
        return readings

    def build(self, seed):
        return build_model(len(self.charset), seed)

    def check_model(self):
        check_network(self.model, len(self.charset), self.info.get("path", "the model"))

    def geometry(self):
        return {"crop": [28, 28, 1]}

    def fit(self, train, validation, settings, checkpoint, resume=False, on_epoch=None):
        """Train the network on the crops of training CAPTCHAs cut into as many pieces as their text
        has, until its CAPTCHA-level validation score (the whole pipeline, cuts included) converges."""
        x, y, used = self._crops(train)
        xv, yv, _ = self._crops(validation)
        if not len(x):
            raise CaptchalabError("no CAPTCHA could be segmented into the right number of characters")
        h = self.hparams
        rate = settings.learning_rate or h["learning_rate"] * (1 if settings.fine_tune else 3)
        config = TrainConfig(
            epochs=h["epochs"],
            batch_size=settings.batch_size or h["batch_size"],
            seed=settings.seed,
            learning_rate=rate,
            warmup_epochs=0.2,
            label_smoothing=h["label_smoothing"],
            validation_count=len(xv),
            patience=h["patience"],
            max_rotate=h["max_rotate"],
            max_shift=h["max_shift"],
            max_scale=h["max_scale"],
        )
        stopping = stopping_for(
            settings, h, len(x), len(validation), h["budget"], max(h["budget"] // 15, 8 * len(x)), warmup_epochs=0.2
        )
        state = train_network(
            self.model,
            x,
            y,
            xv,
            yv,
            config,
            checkpoint,
            resume,
            on_epoch=on_epoch,
            stopping=stopping,
            validate=lambda: captcha_score(self, validation, len(validation)),
            train_score=lambda: self._crop_score(x, y),
            validation_count=len(validation),
        )
        val = evaluate(self.model, xv, yv, self.charset) if len(xv) else {}
        return {
            **run_record(state),
            "captchas_used": used,
            "miscounted": len(train) - used,
            "train_crops": len(x),
            "validation_crops": len(xv),
            "batch_size": config.batch_size,
            "learning_rate": config.learning_rate,
            "validation_crop_accuracy": val.get("accuracy"),
            "validation_per_class_accuracy": val.get("per_class_accuracy"),
        }

    def adversarial_objective(self, images, texts, boxes, targets=None):
        """A differentiable stand-in for the pipeline on a padded batch of BGR images in 0-255:
        each character's true box is cropped, fitted into 20x20 and centred in 28x28 (two resize
        matrices per character), from a soft ink map that ramps across the segmenter's threshold
        (the real pipeline binarises there: pixels far from it cannot change the crop), then the
        network's margin on each character (towards the target's characters when given). Returns
        the padded clean batch, its mask of real pixels, and the constants `adversarial_loss` needs."""
        labels = targets or texts
        if any(b is None or len(b) != len(t) for b, t in zip(boxes, labels)):
            raise CaptchalabError(
                "segment needs the true box of every character, and a target text of the CAPTCHA's own length"
            )
        x0, valid = pad_batch(images)
        n, hp, wp = x0.shape[:3]
        threshold, dark = np.zeros(n, np.float32), np.zeros(n, np.float32)
        for k, image in enumerate(images):
            grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
            blurred = cv2.GaussianBlur(grey, (3, 3), 0)
            threshold[k] = cv2.threshold(blurred, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)[0]
            ink = ink_mask(grey) > 0
            dark[k] = float(grey[ink].mean() < grey[~ink].mean()) if ink.any() and (~ink).any() else 1.0
        grey0 = x0 @ GREY
        soft0 = np.clip(
            np.where(dark[:, None, None] > 0, threshold[:, None, None] - grey0, grey0 - threshold[:, None, None])
            * (127.5 / SOFT_RAMP)
            + 127.5,
            0,
            255,
        )
        owner, ry, rx, classes = [], [], [], []
        for k, (bxs, text) in enumerate(zip(boxes, labels)):
            for (bx0, by0, bx1, by1), ch in zip(bxs, text):
                bw, bh = max(1, bx1 - bx0), max(1, by1 - by0)
                scale = 20.0 / max(bw, bh)
                nh, nw = max(1, round(bh * scale)), max(1, round(bw * scale))
                top, left = (28 - nh) // 2, (28 - nw) // 2
                my, mx = resize_matrix(hp, nh, by0, bh), resize_matrix(wp, nw, bx0, bw)
                crop = my @ soft0[k] @ mx.T
                if crop.sum() > 0:  # centre of mass to the centre, as mnist_crop() does
                    ys, xs = np.mgrid[0:nh, 0:nw]
                    top = int(np.clip(round(14 - (ys * crop).sum() / crop.sum()), 0, 28 - nh))
                    left = int(np.clip(round(14 - (xs * crop).sum() / crop.sum()), 0, 28 - nw))
                fy, fx = np.zeros((28, hp), np.float32), np.zeros((28, wp), np.float32)
                fy[top : top + nh], fx[left : left + nw] = my, mx
                owner.append(k)
                ry.append(fy)
                rx.append(fx)
                classes.append(self.charset.index(ch))
        if getattr(self, "_features", None) is None:  # fc1's output, sharing the model's weights
            import keras

            self._features = keras.Model(self.model.input, self.model.get_layer("fc1").output)
        return (
            x0,
            valid,
            (
                np.array(owner, np.int32),
                np.stack(ry),
                np.stack(rx),
                threshold[:, None, None],
                dark[:, None, None],
                np.array(classes, np.int32),
            ),
        )

    def adversarial_loss(self, x, constants):
        """Each image's capped margins of its characters (the best other class over the true one),
        soft-maximised over the characters, through the soft crops; with targets, the summed
        margins towards the target's characters."""
        import tensorflow as tf

        owner, ry, rx, threshold, dark, classes = constants
        grey = tf.tensordot(x, tf.constant(GREY), axes=[[3], [0]])
        ink = dark * (threshold - grey) + (1.0 - dark) * (grey - threshold)
        soft = tf.clip_by_value(ink * (127.5 / SOFT_RAMP) + 127.5, 0.0, 255.0)
        crops = tf.einsum("chi,cij,cwj->chw", ry, tf.gather(soft, owner), rx)
        fc2 = self.model.get_layer("fc2")
        logits = tf.matmul(self._features(crops[..., None] / 255.0, training=False), fc2.kernel) + fc2.bias
        # the margin by which the best wrong class beats the true one (capped), which unlike the
        # cross-entropy does not vanish on a confident network
        true = tf.one_hot(classes, tf.shape(logits)[-1])
        margin = tf.reduce_max(logits - 1e9 * true, axis=-1) - tf.reduce_sum(logits * true, axis=-1)
        # one misread character is enough: a soft maximum over each image's characters
        capped = tf.minimum(margin, MARGIN_CAP)
        return tf.math.log(tf.math.unsorted_segment_sum(tf.exp(capped), owner, tf.shape(x)[0]))

    def _crop_score(self, crops, labels, limit: int = 4000) -> float:
        """The share of training crops read right: what the network itself fits (its CAPTCHA score
        is capped by the segmenter's cuts, which no training changes)."""
        return float((predict_proba(self.model, crops[:limit]).argmax(axis=1) == labels[:limit]).mean())

    def _crops(self, examples):
        """Crops and label indices of the examples cut into as many pieces as their text has."""
        crops, labels, used = [], [], 0
        for (c, _), text in examples:
            if len(c) == len(text):
                crops.append(c)
                labels.extend(self.charset.index(ch) for ch in text)
                used += 1
        if not crops:
            return np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.int32), 0
        return np.concatenate(crops), np.array(labels, np.int32), used
