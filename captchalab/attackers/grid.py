"""Readers of image-selection CAPTCHAs (kind "grid"): cut the challenge into its tiles (3x3) or
squares (4x4), estimate for each the probability that it shows the prompt's class, and select
the likeliest set: each tile's probability weighed with how many tiles the training answers
selected (a design that always asks for three gives that away), or, with `sizes=false`, every
tile at or above a threshold.

The network scores every class for a tile at once (one sigmoid per class: a tile may show
several objects); training compares, tile by tile, the prompt class's score with whether the
tile is in the answer. That is all a labelled challenge says, so a researcher's own labelled
challenges train it as well as generated ones. A generated 3x3 challenge also records which class
each tile shows: the tile readers then train every class's score on every tile (`every_class`),
as an attacker who labels tiles, not challenges, would. They read each tile and its mirror image
(`flips`), as training shows them both.

- `tiles` and `tilecnn` (tiles.py) read one tile at a time (`TileReader`, here);
- `squares` and `areas` (squares.py): a fully convolutional network over the whole 4x4 scene, one
  score per square and class: a square is read with its neighbours, where the rest of an object
  whose corner it shows lies (a tile reader sees the corner alone).

What they feed their networks and how they choose a selection is in tile_inputs.py.

A reader's network takes "inputs" (`network_inputs()`): one per tile for the tile readers, scoring that
tile, or the whole challenge for `squares`, scoring every square of it.
"""

from __future__ import annotations

import numpy as np

from ..errors import CaptchalabError
from ..kinds import format_tiles, parse_tiles
from ..model import forward
from ..pixels import pad_batch
from ..training import TeacherStage, fit_converging, fresh_seed, learning_rate, run_record
from .base import Attacker, Reading
from .tile_inputs import (
    GRID_PARAMS,
    TILE_PARAMS,
    answer_sizes,
    augment,
    cut,
    likeliest_selection,
    mirrored,
    tile_examples,
    well_formed_tiles,
)


class GridReader(Attacker):
    """Shared by the grid readers: everything but the network and what it takes as input."""

    kind = "grid"
    params = GRID_PARAMS
    differentiable = True  # adversarial grids: gradients from the challenge's pixels to every tile's score
    fresh_examples = True  # fit() can train on new challenges every epoch (train captcha --fresh)
    shifts = True  # training shifts its inputs a few pixels (not where that moves the answer)

    def __init__(self, charset: str = "", hparams: dict | None = None, model=None, info: dict | None = None):
        super().__init__(charset, hparams, model, info)
        self.classes: list[str] = list((info or {}).get("classes") or [])

    def network_inputs(self, image: np.ndarray, grid: int) -> np.ndarray:
        """The network's inputs for one challenge: here one per tile, resized to `tile` pixels."""
        return cut(image, grid, self.hparams["tile"])

    def input_boxes(self, h: int, w: int, grid: int) -> list[tuple[int, int, int, int]]:
        """Where each of `network_inputs` comes from in an h x w challenge: (y0, y1, x0, x1), as `cut` takes them."""
        return [
            (r * h // grid, (r + 1) * h // grid, c * w // grid, (c + 1) * w // grid)
            for r in range(grid)
            for c in range(grid)
        ]

    def prepare(self, image, question):
        prompt = self.classes.index(question["prompt"]) if question["prompt"] in self.classes else -1
        # a dynamic grid's later rounds (attack.play_rounds) show replacements: no size is typical there
        return {
            "inputs": self.network_inputs(image, question["grid"]),
            "grid": question["grid"],
            "prompt": prompt,
            "first_round": question.get("round", 1) == 1,
        }

    def geometry(self):
        return {"tile": [self.hparams["tile"], self.hparams["tile"], 3], "classes": len(self.classes)}

    def input_logits(self, x: np.ndarray) -> np.ndarray:
        """The network's scores for float inputs in [0, 1]: per tile, per class (tiles x classes),
        in chunks of about 1,024 32x32 tiles' worth of pixels."""
        run = forward(self.model)
        chunk = max(1, 1024 * 32 * 32 // (x.shape[1] * x.shape[2]))
        return np.concatenate(
            [
                self.square_logits(run(x[i : i + chunk])).numpy().reshape(-1, len(self.classes))
                for i in range(0, len(x), chunk)
            ]
        )

    def square_logits(self, outputs):
        """The network's outputs (a tensor) as scores per input, per tile it scores, per class
        (inputs x tiles x classes): what reading, training and perturbing compare with the answer."""
        import tensorflow as tf

        return tf.reshape(outputs, [tf.shape(outputs)[0], -1, len(self.classes)])

    def training_examples(self, examples):
        """`tile_examples`: the usable challenges, and their inputs, prompts and targets."""
        return tile_examples(examples, len(self.classes))

    def training_loss(self, outputs, prompt, target):
        """A batch's loss (every score a target decides against it, tile by tile: the prompt's
        always, the other classes' where the challenge records them) and, per input, the share of
        its tiles whose prompt score is on the right side (tensors)."""
        import tensorflow as tf

        logits = self.square_logits(outputs)
        known = tf.cast(target >= 0, tf.float32)
        losses = tf.nn.sigmoid_cross_entropy_with_logits(tf.maximum(target, 0.0), logits) * known
        loss = tf.reduce_sum(losses) / tf.maximum(tf.reduce_sum(known), 1.0)
        chosen = tf.gather(logits, prompt, axis=2, batch_dims=1)
        answer = tf.gather(target, prompt, axis=2, batch_dims=1)
        return loss, tf.reduce_mean(tf.cast(tf.equal(chosen >= 0, answer > 0.5), tf.float32), axis=1)

    def tile_probabilities(self, batch: list[dict]) -> list[np.ndarray]:
        """Per challenge, every tile's probability of every class (tiles x classes)."""
        if not batch:
            return []
        logits = self.input_logits(np.concatenate([p["inputs"] for p in batch]).astype(np.float32) / 255.0)
        probabilities = 1 / (1 + np.exp(-logits))
        return np.split(probabilities, np.cumsum([p["grid"] ** 2 for p in batch])[:-1])

    def read_prepared(self, batch):
        readings = []
        for prepared, probabilities in zip(batch, self.tile_probabilities(batch)):
            if prepared["prompt"] < 0:  # a class it never learnt: it cannot tell, so it selects nothing
                readings.append(Reading("", [], details={"tile_probabilities": None, "unknown_prompt": True}))
                continue
            p = probabilities[:, prepared["prompt"]]
            sizes = self.info.get("answer_sizes")
            if self.hparams["sizes"] and sizes and prepared.get("first_round", True):
                chosen = likeliest_selection(p, sizes)
            else:
                chosen = [k for k, v in enumerate(p) if v >= self.hparams["threshold"]]
            readings.append(
                Reading(
                    format_tiles(chosen),
                    [float(p[k]) for k in chosen],
                    details={"tile_probabilities": [round(float(v), 4) for v in p]},
                )
            )
        return readings

    def adversarial_objective(self, images, texts, boxes, targets=None, questions=None):
        """The padded batch of challenges (BGR, 0-255), its mask of real pixels, and the constants
        `adversarial_loss` needs: every network input's box (`input_boxes`), its challenge, the
        prompt's class and, per tile it scores, whether the tile is in the answer."""
        if targets:
            raise CaptchalabError("targeted perturbations apply to text CAPTCHAs only")
        if not questions:
            raise CaptchalabError("perturbing an image grid needs its questions (grid size and prompt)")
        x0, valid = pad_batch(images)
        hp, wp = x0.shape[1:3]
        boxes_out, owner, prompt, target = [], [], [], []
        for k, (image, answer, question) in enumerate(zip(images, texts, questions)):
            n, (h, w) = question["grid"], image.shape[:2]
            chosen = np.isin(np.arange(n * n), sorted(parse_tiles(answer, n * n))).astype(np.float32)
            index = self.classes.index(question["prompt"]) if question["prompt"] in self.classes else 0
            inputs = self.input_boxes(h, w, n)
            for y0, y1, x0_, x1 in inputs:
                boxes_out.append([y0 / (hp - 1), x0_ / (wp - 1), (y1 - 1) / (hp - 1), (x1 - 1) / (wp - 1)])
                owner.append(k)
                prompt.append(index)
            target.extend(chosen.reshape(len(inputs), -1))
        return (
            x0,
            valid,
            (
                np.array(boxes_out, np.float32),
                np.array(owner, np.int32),
                np.array(prompt, np.int32),
                np.array(target, np.float32),
                np.int32(len(images)),
            ),
        )

    def adversarial_loss(self, x, constants):
        """Per challenge, the summed cross-entropy of the prompt's score on every tile against
        whether the tile is in the answer (perturb() ascends it: targets fade, others light up)."""
        import tensorflow as tf

        boxes, owner, prompt, target, count = constants
        h, w = self.model.input_shape[1:3]
        # `cut` shrinks with INTER_AREA, every pixel counting: sample densely, then average 4x4
        # blocks (bilinear sampling alone would reach one pixel in ten)
        dense = tf.image.crop_and_resize(x / 255.0, boxes, owner, [4 * h, 4 * w], method="bilinear")
        logits = self.square_logits(self.differentiable_outputs(tf.nn.avg_pool2d(dense, 4, 4, "VALID")))
        chosen = tf.gather(logits, prompt, axis=2, batch_dims=1)
        per_input = tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(target, chosen), axis=1)
        return tf.math.unsorted_segment_sum(per_input, owner, count)

    def differentiable_outputs(self, x):
        """The network's outputs for inputs `x` (a float tensor in [0, 1]) as reading sees them,
        differentiably (adversarial_loss)."""
        import tensorflow as tf

        return tf.cast(self.model(x, training=False), tf.float32)

    def check_model(self):
        if not self.classes:
            raise CaptchalabError(f"{self.info.get('path', 'this model')}: a {self.name} model records no classes")
        if self.model.output_shape[-1] != len(self.classes):
            raise CaptchalabError(
                f"{self.info.get('path', 'this model')}: {self.model.output_shape[-1]} outputs "
                f"for {len(self.classes)} classes"
            )

    output_layer = "classes"  # init_from (the default) remaps it class by class

    def output_labels(self):
        return self.classes

    def unlabelled_question(self, train):
        grids = {p["grid"] for p, _ in train}
        if len(grids) != 1:
            raise CaptchalabError(
                f"unlabelled images say nothing of their grid, and the labelled challenges have "
                f"{len(grids)} sizes ({', '.join(f'{n}x{n}' for n in sorted(grids))}): "
                "train on one grid size"
            )
        return {"grid": grids.pop(), "prompt": ""}  # the prompt is not known either: no class is asked

    def pseudo_examples(self, teacher, inputs: np.ndarray, limit: int, threshold: float):
        """At most `limit` of the unlabelled network inputs `teacher` (a reader of this class) reads
        at least `threshold` confidently, as `training_examples` gives examples (inputs, prompts,
        targets under its reading): what a reader that declares `semi_supervised` learns from."""
        raise NotImplementedError

    def fit(self, train, validation, settings, checkpoint, resume=False, on_epoch=None, fresh=None, unlabelled=None):
        """Train tile by tile until the challenge-level validation score (exact sets) converges; with
        `fresh`, every epoch on the challenges `fresh(seed)` draws; with `unlabelled` (prepared
        challenges), in two stages, the second also on the unlabelled inputs a mean teacher reads
        confidently (`pseudo_examples`, training.TeacherStage)."""
        stage = None
        if unlabelled:
            stage = TeacherStage(checkpoint, resume)
            stage.first(lambda: self.fit(train, validation, settings, checkpoint, resume, on_epoch, fresh=fresh))
            checkpoint, resume = stage.checkpoint, stage.resume
        h = self.hparams
        usable, (inputs, prompts, targets) = self.training_examples(train)
        # validation, and every later read, weigh selections by the sizes the training answers had
        self.info["answer_sizes"] = answer_sizes(usable, max(p["grid"] ** 2 for p, _ in usable))
        batch_size = settings.batch_size or h["batch_size"]
        lr = learning_rate(settings, h["learning_rate"])
        if stage:
            stage.start(self.model)
            teacher = type(self)(self.charset, h, stage.teacher, self.info)
            teacher.classes = self.classes
            scraped = np.concatenate([p["inputs"] for p in unlabelled])

        def epoch_batches(rng):
            et, ep, ey = self.training_examples(fresh(fresh_seed(rng)))[1] if fresh else (inputs, prompts, targets)
            if stage:  # at most as many pseudo-labelled inputs as labelled ones, per_labelled times
                pseudo = self.pseudo_examples(
                    teacher, scraped, int(stage.pseudo.per_labelled * len(et)), stage.pseudo.threshold
                )
                stage.pseudo_count = len(pseudo[0])
                et, ep, ey = (np.concatenate(pair) for pair in zip((et, ep, ey), pseudo))
            order = rng.permutation(len(et))
            for first in range(0, len(order), batch_size):
                batch = order[first : first + batch_size]
                x, y = self.training_batch(et[batch], ey[batch], rng)
                yield x, ep[batch], y
                if stage:
                    stage.update()

        state = fit_converging(
            self,
            settings,
            usable,
            validation,
            train_count=len(inputs),
            budget=h["budget"],
            small_set_budget=max(h["budget"] // 15, 30 * len(inputs)),
            batch_size=batch_size,
            rate=lr,
            make_step=self.train_step,
            epoch_batches=epoch_batches,
            checkpoint=checkpoint,
            resume=resume,
            on_epoch=on_epoch,
            stage=stage,
            config={"tiles": targets.size, "classes": self.classes, "unlabelled": len(unlabelled or [])},
        )
        for record in state["history"]:
            record["tile_accuracy"] = record.pop("accuracy", None)  # on training tiles, prompt class only
        result = {
            **run_record(state),
            "batch_size": batch_size,
            "learning_rate": lr,
            "training_tiles": targets.size,
            "answer_sizes": self.info["answer_sizes"],
            **self.training_notes(usable),
        }
        return stage.notes(result, len(unlabelled), state["history"], unit="tiles") if stage else result

    def training_batch(self, inputs: np.ndarray, targets: np.ndarray, rng) -> tuple[np.ndarray, np.ndarray]:
        """A batch as the network trains on it: the inputs augmented (mirror images flip their
        targets' tiles) and scaled to [0, 1]."""
        h = self.hparams
        x, flipped = augment(
            inputs, rng, h["augment"], h["tile"], h["colour"], h["outline"], self.shifts, h["randconv"]
        )
        return x.astype(np.float32) / 255.0, mirrored(targets, flipped)

    def train_step(self, optimizer):
        """One step on `training_loss`; it also counts the tiles read right."""
        import tensorflow as tf

        model, variables = self.model, self.model.trainable_variables

        @tf.function(reduce_retracing=True)
        def step(x, prompt, target):
            with tf.GradientTape() as tape:
                loss, right = self.training_loss(tf.cast(model(x, training=True), tf.float32), prompt, target)
            optimizer.apply(tape.gradient(loss, variables), variables)
            return loss, tf.reduce_sum(right)  # tiles read right, as a share of each input's tiles

        return step

    def training_notes(self, usable: list) -> dict:
        """What the model's JSON records of training beyond the shared fields, given the usable
        training challenges."""
        return {}


class TileReader(GridReader):
    """A reader of one tile at a time; where a training challenge records which class each tile
    shows (a generated grid3's `tiles`), it learns every class's score on every tile from it; from
    unlabelled challenges (`train captcha --unlabelled`) it learns the tiles a mean teacher reads
    with every class decided."""

    params = TILE_PARAMS
    truth = ("tiles",)
    semi_supervised = True
    ensembles = True  # its reading is the sigmoid of its network's logits: several networks' can be averaged

    def class_index(self, cls: str | None) -> int:
        return self.classes.index(cls) if cls in self.classes else -1

    def prepare(self, image, question):
        prepared = super().prepare(image, question)
        shown = question.get("truth", {}).get("tiles")
        if self.hparams["every_class"] and well_formed_tiles(shown, question["grid"] ** 2):  # training only
            prepared["tile_classes"] = [self.class_index(t["class"]) for t in shown]
            prepared["tile_clutter"] = [[self.class_index(c) for c in t.get("clutter", [])] for t in shown]
        return prepared

    def pseudo_examples(self, teacher, inputs, limit, threshold):
        # a tile joins where the teacher is sure of every class, shown or not, the surest first:
        # the whole tile then teaches every class's score
        p = 1 / (1 + np.exp(-teacher.input_logits(inputs.astype(np.float32) / 255.0)))
        sure = np.maximum(p, 1 - p).min(axis=1)
        chosen = np.flatnonzero(sure >= threshold)
        chosen = np.sort(chosen[np.argsort(-sure[chosen], kind="stable")][:limit])
        targets = (p[chosen] >= 0.5).astype(np.float32)[:, None, :]  # inputs x one tile x classes
        return inputs[chosen], p[chosen].argmax(axis=1).astype(np.int32), targets

    def with_mirror(self, read, x):
        """`read(x)`, averaged with `read` of the mirror images where `flips` asks for it."""
        return (read(x) + read(x[:, :, ::-1])) / 2 if self.hparams["flips"] else read(x)

    def input_logits(self, x):
        return self.with_mirror(super().input_logits, x)

    def differentiable_outputs(self, x):
        # a perturbation must fool the reading as it is made, mirror image included
        return self.with_mirror(super().differentiable_outputs, x)

    def training_notes(self, usable):
        # how many training challenges taught every class, not the prompt's alone
        return {
            "every_class": {"challenges": sum(p.get("tile_classes") is not None for p, _ in usable), "of": len(usable)}
        }
