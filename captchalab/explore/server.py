"""`captchalab explore`: a local web app that shows every layer of the seed's network live, for a
character drawn on a canvas, for the pieces a CAPTCHA is cut into, and the per-time-step reading
of a ctc model.

`Explorer` holds the models and data behind the page and answers each question as a plain dict;
api.py serves it (Starlette: one static page, plain HTML/CSS/JS from this package, nothing from
the network, and a small JSON API).
"""

from __future__ import annotations

import base64
import time
from pathlib import Path

import numpy as np

from ..attack import hint_for
from ..attackers.base import load_attacker
from ..charset import DIGITS, parse_charset
from ..data.dataset import GenerationSpec, Source
from ..errors import CaptchalabError
from ..kinds import get_kind, reads
from ..plugins import get_generator, load_generators
from ..score import attacker_state
from ..data.media import media_of
from ..serving import png_uri
from ..visualize import LAYERS, activations, prepare_image, similarity
from .api import BadRequest, create_app, serve  # noqa: F401 (served from here: `captchalab explore`)

UPLOAD_LIMIT = 5 * 2**20
CHAR_LAYERS = ("conv1", "conv2", "conv3", "conv4", "conv5", "conv6")


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode()


def maps_payload(maps: np.ndarray) -> dict:
    """(H, W, C) non-negative maps as one byte per value, channel by channel, scaled to the
    layer's maximum (one colour scale per layer)."""
    top = float(maps.max()) or 1.0
    quantised = np.rint(np.transpose(maps, (2, 0, 1)) / top * 255).astype(np.uint8)
    return {
        "shape": list(maps.shape),
        "max": top,
        "data": _b64(quantised),
        "silent": [int(k) for k in np.flatnonzero(~np.any(maps > 0, axis=(0, 1)))],
    }


class Explorer:
    """The models and data behind the page; every method returns plain JSON-able dicts."""

    def __init__(self, models: list[Path], mnist: str | None = None, plugin_dirs=(), upload_limit: int = UPLOAD_LIMIT):
        self.models, self.errors = {}, {}
        for k, path in enumerate(models):
            key = f"m{k}"
            try:
                self.models[key] = load_attacker(path, list(plugin_dirs))
            except CaptchalabError as exc:
                self.errors[key] = (str(path), str(exc))
        self.mnist_path, self.plugin_dirs, self.upload_limit = mnist, tuple(plugin_dirs), upload_limit
        self._mnist = None
        self._warm_up()

    def _warm_up(self) -> None:
        """Trace every compiled pass now, so the first stroke on the page is as fast as the rest."""
        blank = np.full((60, 120, 3), 255, np.uint8)
        blank[20:40, 30:40] = 0
        for attacker in self.models.values():
            if "layers" in attacker.views:
                activations(attacker.model, np.full((28, 28), 255, np.uint8))
            view = get_kind(attacker.kind).view
            if view == "tiles":
                self.grid_view(attacker, np.full((96, 96, 3), 128, np.uint8), attacker.grids()[0], None)
            elif view == "text":
                attacker.read([blank])
            else:
                self.challenge_view(key_of(self.models, attacker), None, 0.5, 0)

    def describe(self) -> dict:
        listed = [
            {
                "id": key,
                "label": a.label(),
                "attacker": a.name,
                "charset": a.charset,
                "kind": a.kind,
                "view": get_kind(a.kind).view,
                "example_style": self.example_style(a),
                "classes": getattr(a, "classes", None),
                "character_layers": "layers" in a.views,
                "state": attacker_state(a),
            }
            for key, a in self.models.items()
        ]
        listed += [
            {"id": key, "label": Path(path).name, "error": message} for key, (path, message) in self.errors.items()
        ]
        generators = sorted(load_generators(list(self.plugin_dirs)).items())
        return {
            "models": listed,
            "styles": {name: g.charset for name, g in generators},
            "style_kinds": {name: g.kind for name, g in generators},
            "style_views": {name: get_kind(g.kind).view for name, g in generators},
            "upload_limit": self.upload_limit,
        }

    def trained_overrides(self, style: str) -> dict:
        """The parameters the user set on `style` when a model here was trained on it (its JSON)."""
        for attacker in self.models.values():
            source = attacker.info.get("source") or {}
            if source.get("generator") == style and isinstance(source.get("overrides"), dict):
                return dict(source["overrides"])
        return {}

    @staticmethod
    def example_style(attacker) -> str:
        """The style a reader's own challenges came from (its model's JSON), else its kind's example."""
        source = attacker.info.get("source") or {}
        return source.get("generator") or get_kind(attacker.kind).example_style

    def model(self, key: str, need_layers: bool = False):
        if key in self.errors:
            raise BadRequest(f"model {self.errors[key][0]} did not load: {self.errors[key][1]}")
        if key not in self.models:
            raise BadRequest(f"no model {key!r}")
        attacker = self.models[key]
        if need_layers and "layers" not in attacker.views:
            raise BadRequest(
                f"{attacker.label()} is a {attacker.name} model: layer by layer views are for the "
                "seed's network (segment models); its CAPTCHA view shows what it reads per time step"
            )
        return attacker

    # -- single characters ---------------------------------------------------------------------
    def char_view(self, key: str, image: np.ndarray, prepared: bool = False) -> dict:
        """Every layer of the seed's network for one character (any image, or a 28x28 crop)."""
        attacker = self.model(key, need_layers=True)
        crop = image if prepared else prepare_image(image)
        if not crop.any():
            raise BadRequest("there is no ink in this image: draw a character first")
        start = time.perf_counter()
        acts = activations(attacker.model, crop)
        seconds = time.perf_counter() - start
        probs = acts["fc2"]
        return {
            "input": _b64(crop),
            "layers": {name: maps_payload(acts[name]) for name in CHAR_LAYERS},
            "fc1": maps_payload(acts["fc1"].reshape(20, 25, 1)),
            "probabilities": [float(p) for p in probs],
            "charset": attacker.charset,
            "prediction": attacker.charset[int(np.argmax(probs))],
            "forward_ms": round(1000 * seconds, 2),
            "_acts": acts,
        }

    def kernels(self, key: str) -> dict:
        """Per conv layer and output map, its 5x5 kernel (summed over input maps beyond conv1)."""
        attacker = self.model(key, need_layers=True)
        out = {}
        for name in CHAR_LAYERS:
            k = attacker.model.get_layer(name).kernel.numpy()  # (5, 5, in, out)
            summed = k.sum(axis=2).transpose(2, 0, 1)  # (out, 5, 5)
            out[name] = {"inputs": int(k.shape[2]), "kernels": np.round(summed, 4).tolist()}
        return out

    def compare(self, key: str, first: np.ndarray, second: np.ndarray) -> dict:
        a, b = self.char_view(key, first), self.char_view(key, second)
        sims = similarity(a.pop("_acts"), b.pop("_acts"))
        hidden = [n for n in LAYERS[1:-1]]
        return {
            "first": a,
            "second": b,
            "similarity": sims,
            "layers": list(LAYERS),
            "most_apart": min(hidden, key=lambda n: sims[n]),
        }

    # -- whole CAPTCHAs ------------------------------------------------------------------------
    def captcha_view(
        self, key: str, image: np.ndarray, length: int | None = None, grid: int = 3, prompt: str | None = None
    ) -> dict:
        attacker = self.model(key)
        kind = get_kind(attacker.kind)
        if kind.view == "tiles":
            return {"model": key, "attacker": attacker.name, **self.grid_view(attacker, image, grid, prompt)}
        if kind.view == "challenge":
            if kind.question_parts:
                raise BadRequest(
                    f"a {kind.name} challenge needs its {', '.join(p for p, _ in kind.question_parts)} "
                    "as well: read a generated one (Random CAPTCHA)"
                )
            return self.answer_view(key, attacker, image, {}, None, {})
        start = time.perf_counter()
        prepared = attacker.prepare(image, length if attacker.uses_length else None)
        reading = attacker.read_prepared([prepared])[0]
        view = {
            "model": key,
            "attacker": attacker.name,
            "text": reading.text,
            "confidence": reading.confidence,
            "charset": attacker.charset,
            "width": int(image.shape[1]),
            "height": int(image.shape[0]),
        }
        if reading.boxes is not None:
            view["boxes"] = [list(map(int, b)) for b in reading.boxes]
            view["crops"] = [_b64(c) for c in reading.crops]
        if "steps" in attacker.views:
            probs = attacker.probabilities([prepared])[0]  # (steps, blank + characters)
            view["steps"] = {
                "probabilities": np.round(probs, 4).tolist(),
                "input": png_uri(prepared),
                "labels": ["blank"] + list(attacker.charset),
            }
        view["ms"] = round(1000 * (time.perf_counter() - start), 1)
        return view

    def grid_view(self, attacker, image: np.ndarray, grid: int, prompt: str | None) -> dict:
        """An image-grid challenge as a reader sees it: the probability it gives each tile of
        showing the prompt, what it selects, and every layer of its network for the tile it
        finds likeliest."""
        if grid not in attacker.grids():
            raise BadRequest(
                f"{attacker.label()} reads {' or '.join(f'{n}x{n}' for n in attacker.grids())} grids, not {grid}x{grid}"
            )
        if prompt is not None and prompt not in attacker.classes:
            raise BadRequest(f"{attacker.label()} never learnt {prompt!r} (it knows: {', '.join(attacker.classes)})")
        start = time.perf_counter()
        question = {"grid": grid, "prompt": prompt or (attacker.classes or ["?"])[0]}
        prepared = attacker.prepare(image, question)
        reading = attacker.read_prepared([prepared])[0]
        view = {
            "kind": attacker.kind,
            "view": "tiles",
            "grid": grid,
            "prompt": question["prompt"],
            "text": reading.text,
            "confidence": reading.confidence,
            "tiles": (reading.details or {}).get("tile_probabilities"),
            "classes": attacker.classes,
            "width": int(image.shape[1]),
            "height": int(image.shape[0]),
        }
        if attacker.model is not None and view["tiles"] and "inputs" in prepared:
            best = int(np.argmax(view["tiles"]))
            maps, probe = self._relu_probe(attacker)
            # the network input that scores the likeliest tile: the tile itself, or the whole grid
            unit = best * len(prepared["inputs"]) // grid**2
            outputs = probe(prepared["inputs"][unit : unit + 1].astype(np.float32) / 255.0, training=False)
            view["tile"] = {
                "index": best,
                "image": png_uri(prepared["inputs"][unit]),
                "layers": {
                    layer.name: maps_payload(np.asarray(out)[0])
                    for layer, out in zip(maps, outputs if len(maps) > 1 else [outputs])
                },
            }
        view["ms"] = round(1000 * (time.perf_counter() - start), 1)
        return view

    def challenge_view(self, key: str, style: str | None, strength: float, seed: int) -> dict:
        """A generated slider or rotation challenge read by one model: what it found beside the
        truth, and its network's maps for this input."""
        attacker = self.model(key)
        if get_kind(attacker.kind).view != "challenge":
            raise BadRequest(f"{attacker.label()} reads {attacker.kind} CAPTCHAs: drop one or draw a random one")
        try:
            style = style or self.example_style(attacker)
            spec = GenerationSpec(
                style,
                1,
                seed=seed,
                strength=strength,
                params=self.trained_overrides(style),
                plugin_dirs=self.plugin_dirs,
            )
            if not reads(attacker.kind, spec.kind):
                raise BadRequest(f"{attacker.label()} reads {attacker.kind} CAPTCHAs, not {spec.kind} ones")
            sample = Source(spec=spec).sample(0)
        except CaptchalabError as exc:
            raise BadRequest(str(exc)) from None
        shown = {
            part: sample.parts[part]
            for part, _ in get_kind(attacker.kind).question_parts
            if sample.parts and part in sample.parts
        }
        return self.answer_view(key, attacker, sample.image, hint_for(attacker, sample, None), sample.text, shown)

    def answer_view(self, key: str, attacker, image: np.ndarray, question, truth: str | None, parts: dict) -> dict:
        """A challenge read whole: the reader's answer in its kind's words, whether it passes, the
        images its kind draws for that answer (the piece where it was put, the picture turned back),
        and its network's maps for this input."""
        kind = get_kind(attacker.kind)
        start = time.perf_counter()
        prepared = attacker.prepare(image, question)
        reading = attacker.read_prepared([prepared])[0]
        images = kind.explore_images(image, question, parts, reading.text, truth)
        picture = kind.picture(image)  # a sound is drawn as its spectrogram, and sent to be played too
        view = {
            "model": key,
            "attacker": attacker.name,
            "kind": attacker.kind,
            "view": kind.view,
            "image": png_uri(picture),
            "sound": None if kind.media == "image" else media_of(kind).data_uri(image),
            "found": reading.text,
            "truth": truth,
            "said": kind.describe_reading(reading.text, truth),
            "solved": None if truth is None else kind.correct(truth, reading.text),
            "images": [{"caption": caption, "image": png_uri(im)} for caption, im in images],
            "width": int(picture.shape[1]),
            "height": int(picture.shape[0]),
            **self.network_maps(attacker, prepared),
        }
        if "steps" in attacker.views:  # what the reader heard or saw at each time step
            view["steps"] = {
                "probabilities": np.round(attacker.probabilities([prepared])[0], 4).tolist(),
                "input": png_uri(picture),
                "labels": ["blank"] + list(attacker.charset),
            }
        view["ms"] = round(1000 * (time.perf_counter() - start), 1)
        return view

    def network_maps(self, attacker, prepared) -> dict:
        """Every ReLU map of a trained reader's network for one prepared input."""
        if attacker.model is None:
            return {}
        maps, probe = self._relu_probe(attacker)
        if not maps:
            return {}
        outputs = probe(attacker.inputs([prepared]), training=False)
        outputs = outputs if len(maps) > 1 else [outputs]
        return {"layers": {layer.name: maps_payload(np.asarray(out)[0]) for layer, out in zip(maps, outputs)}}

    def _relu_probe(self, attacker):
        """The network's ReLU maps (convolutions with ReLU, ReLU layers) and a model giving them
        all in one pass, built once per reader."""
        import keras

        probes = self.__dict__.setdefault("_probes", {})
        if id(attacker) not in probes:
            maps = [
                layer
                for layer in attacker.model.layers
                if isinstance(layer, keras.layers.ReLU)
                or (isinstance(layer, keras.layers.Conv2D) and layer.activation is keras.activations.relu)
            ]
            # an ensemble's maps are its members', inside them: it has none of its own to show
            probes[id(attacker)] = (
                maps,
                keras.Model(attacker.model.input, [layer.output for layer in maps])
                if maps
                else lambda x, training=False: [],
            )
        return probes[id(attacker)]

    # -- random inputs -------------------------------------------------------------------------
    def random_char(self, seed: int) -> dict:
        rng = np.random.default_rng(seed)
        try:
            if self._mnist is None:
                from ..data.mnist import load_mnist

                self._mnist = load_mnist(self.mnist_path, download=False)
            index = int(rng.integers(len(self._mnist.x_test)))
            image, label = self._mnist.x_test[index], f"MNIST test #{index} (a {int(self._mnist.y_test[index])})"
        except CaptchalabError:  # no MNIST here: a digit rendered from the bundled fonts
            from ..generation.chars import render_char

            digit = str(rng.integers(10))
            image, label = render_char(digit, rng), f"a rendered {digit} (MNIST is not available)"
        return {"image": png_uri(255 - image), "label": label}

    def random_captcha(self, style: str, strength: float, charset: str, length: int, seed: int) -> dict:
        """A CAPTCHA of `style`, drawn with the parameters a model here was trained on with it (a
        grid reader's own tile folder); `charset` and `length` only where the style draws text."""
        try:
            kind = get_kind(get_generator(style, list(self.plugin_dirs)).kind)
            chosen = parse_charset(charset or "digits") if kind.characters else DIGITS
            spec = GenerationSpec(
                style,
                1,
                length,
                length,
                chosen,
                seed,
                strength,
                self.trained_overrides(style),
                plugin_dirs=self.plugin_dirs,
            )
            sample = Source(spec=spec).sample(0)
        except CaptchalabError as exc:
            raise BadRequest(str(exc)) from None
        return {
            "image": png_uri(kind.picture(sample.image)),
            "text": sample.text,
            "boxes": sample.boxes,
            "question": sample.question,
        }


def key_of(models: dict, attacker) -> str:
    return next(key for key, a in models.items() if a is attacker)
