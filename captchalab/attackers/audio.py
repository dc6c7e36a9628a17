"""Readers of audio CAPTCHAs (kind "audio"): what they are given is the challenge's waveform
(1-D int16 samples at sound.SAMPLE_RATE), not an image.

- `audioctc`: the trained reader. The log-mel spectrogram (64 bands, a frame every 10 ms) goes
  through two convolution blocks, a dense layer per time step and a bidirectional GRU, which gives
  character logits every 80 ms; it is trained with Keras 3's CTC loss through the shared loop
  (class 0 is the blank) and decoded greedily, so it reads any length and needs no hint, and
  never cuts at silences (the continuous style leaves none).
- `pocketsphinx`: off the shelf. CMU PocketSphinx with the US English acoustic model and
  dictionary its wheel ships, restricted by a JSGF grammar to the CAPTCHA's vocabulary (each
  character's spoken name, any number of them), as a solver restricts it; it hears 16 kHz 16-bit
  mono, which is what datasets hold (sound.decode_wav resamples anything else with scipy's
  polyphase filter).
"""

from __future__ import annotations

import numpy as np

from ..errors import CaptchalabError
from ..registry import Param
from ..sound import HOP, MELS, SAMPLE_RATE, log_mel
from .base import Attacker, BaseRecipe, Reading, register_attacker, softmax
from .ctc_inputs import greedy_decode

MAX_LABEL = 12
LEVELS = 12.0  # log-mel values times this fit uint8 (log1p power tops out near 20)
POOL = 8  # time frames per output step


@register_attacker
class AudioCtc(Attacker):
    name = "audioctc"
    kind = "audio"
    description = "Log-mel spectrogram into convolutions and a bidirectional GRU, trained with CTC."
    output_layer, output_offset = "logits", 1  # column 0 is the blank
    views = frozenset({"steps"})  # explore shows what it heard at each 80 ms step
    # both audio styles at strengths 0 to 0.5 (shipped: captchalab/bases/audioctc-digits.keras); not
    # 0.8 too: a reader this size still heard only 71% of such a mixture after 286,000 examples
    base = BaseRecipe(styles=("spoken", "continuous"), strengths=(0.0, 0.25, 0.5), shape=("filters", "rnn_units"))
    params = (
        Param("seconds", float, 8.0, 2.0, 30.0, "audio heard at most (longer challenges are squeezed in time)"),
        Param("filters", int, 16, 8, 128, "filters of the first convolution (then 2x)"),
        Param("rnn_units", int, 96, 16, 512, "GRU units per direction"),
        Param(
            "budget", int, 800_000, 1, 10**9, "training examples seen at most (the run ends sooner when it converges)"
        ),
        Param("batch_size", int, 32, 1, 4096, "training batch size"),
        Param("learning_rate", float, 2e-3, 1e-6, 1.0, "peak learning rate from scratch (half when fine-tuning)"),
        Param("patience", int, 3, 1, 1000, "epochs without a validation gain before the learning rate is cut"),
        Param("augment", float, 1.0, 0.0, 2.0, "strength of the training augmentation (masked bands and moments)"),
    )

    @property
    def frames(self) -> int:
        return int(self.hparams["seconds"] * SAMPLE_RATE / HOP) // POOL * POOL

    def prepare(self, image, length):
        """The log-mel spectrogram as uint8 (frames, MELS), padded with silence or squeezed in time
        to the reader's length."""
        spec = log_mel(image)
        if len(spec) > self.frames:
            import cv2

            spec = cv2.resize(spec, (MELS, self.frames), interpolation=cv2.INTER_AREA)
        out = np.zeros((self.frames, MELS), np.uint8)
        out[: len(spec)] = np.clip(spec * LEVELS, 0, 255)
        return out

    def geometry(self):
        return {"frames": self.frames, "mels": MELS, "hop_ms": 1000 * HOP / SAMPLE_RATE, "steps": self.frames // POOL}

    def build(self, seed):
        import keras

        h, layers = self.hparams, keras.layers
        init = keras.initializers.HeNormal(seed=seed)
        inputs = keras.Input((self.frames, MELS, 1), name="log_mel")
        x, f = inputs, h["filters"]
        # 8 frames (80 ms) and 16 bands to a cell; batch normalisation lets CTC leave its all-blank start
        for i, (filters, pool) in enumerate([(f, (2, 2)), (2 * f, (2, 2)), (2 * f, (2, 4))], 1):
            x = layers.Conv2D(filters, 3, padding="same", use_bias=False, kernel_initializer=init, name=f"conv{i}")(x)
            x = layers.BatchNormalization(name=f"bn{i}")(x)
            x = layers.ReLU(name=f"relu{i}")(x)
            x = layers.MaxPooling2D(pool, name=f"pool{i}")(x)
        x = layers.Reshape((self.frames // POOL, (MELS // 16) * 2 * f), name="steps")(x)
        x = layers.Dense(128, activation="relu", kernel_initializer=init, name="project")(x)
        x = layers.Bidirectional(layers.GRU(h["rnn_units"], return_sequences=True), name="rnn")(x)
        outputs = layers.Dense(len(self.charset) + 1, dtype="float32", name="logits")(x)
        return keras.Model(inputs, outputs, name="audioctc")

    def check_model(self):
        shape = tuple(self.model.input_shape[1:3])
        if shape != (self.frames, MELS) or self.model.output_shape[-1] != len(self.charset) + 1:
            raise CaptchalabError(
                f"this audioctc model hears {shape} frames x bands with {self.model.output_shape[-1] - 1} "
                f"characters; its JSON says {self.frames} x {MELS} and {len(self.charset)}"
            )

    def targets(self, texts):
        out = np.zeros((len(texts), MAX_LABEL), np.int32)
        for row, text in enumerate(texts):
            if len(text) > MAX_LABEL:
                raise CaptchalabError(f"audioctc reads at most {MAX_LABEL} characters; {text!r} is longer")
            out[row, : len(text)] = [self.charset.index(c) + 1 for c in text]
        return out

    def loss(self, targets, outputs):
        import keras

        targets = keras.ops.cast(targets, "int32")
        lengths = keras.ops.sum(keras.ops.cast(targets > 0, "int32"), axis=1)
        steps = keras.ops.full((keras.ops.shape(outputs)[0],), keras.ops.shape(outputs)[1], dtype="int32")
        return keras.ops.ctc_loss(targets, outputs, lengths, steps, mask_index=0)

    def augment(self, inputs, rng):
        """SpecAugment's masks, a little: up to two bands of up to 8 of the 64 silenced, and up to
        two moments of up to 60 ms (shorter than any character, so no label is erased)."""
        strength = self.hparams["augment"]
        if strength <= 0:
            return inputs
        out = inputs.copy()
        for row in out:
            for _ in range(int(rng.integers(0, 3))):
                width = int(rng.integers(1, 1 + 8 * strength))
                at = int(rng.integers(0, MELS - width))
                row[:, at : at + width] = 0
            for _ in range(int(rng.integers(0, 3))):
                width = int(rng.integers(1, 1 + 6 * strength))
                at = int(rng.integers(0, len(row) - width))
                row[at : at + width] = 0
        return out

    def probabilities(self, batch):
        """Per-step probabilities (blank first) of prepared challenges."""
        from ..model import forward

        return softmax(np.asarray(forward(self.model)(self.inputs(batch)), np.float64))

    def read_prepared(self, batch):
        if not batch:
            return []
        return [Reading(text, conf) for text, conf in greedy_decode(self.probabilities(batch), self.charset)]


SPOKEN = {str(d): w for d, w in enumerate("zero one two three four five six seven eight nine".split())}


@register_attacker
class PocketSphinx(Attacker):
    name = "pocketsphinx"
    kind = "audio"
    description = "CMU PocketSphinx off the shelf (US English model), held to the CAPTCHA's words by a grammar."
    trainable = False
    params = (
        Param(
            "grammar", bool, True, help="hold the recogniser to the characters' spoken names (else its language model)"
        ),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._decoder = None

    def __getstate__(self):
        return {**super().__getstate__(), "_decoder": None}

    def words(self) -> dict[str, str]:
        """Each character of the set by the word the dictionary spells it with."""
        return {c: SPOKEN.get(c, c.lower()) for c in self.charset}

    def decoder(self):
        if self._decoder is None:
            try:
                import pocketsphinx
            except ImportError:
                raise CaptchalabError(
                    "pocketsphinx is not installed: pip install 'captchalab[audio]' (or pip install pocketsphinx)"
                ) from None
            decoder = pocketsphinx.Decoder(
                samprate=SAMPLE_RATE, loglevel="FATAL", **({"lm": None} if self.hparams["grammar"] else {})
            )
            if self.hparams["grammar"]:
                names = sorted(set(self.words().values()))
                unknown = [w for w in names if not decoder.lookup_word(w)]
                if unknown:
                    raise CaptchalabError(f"pocketsphinx's dictionary has no word for {unknown[:5]}")
                decoder.add_jsgf_string(
                    "captcha", "#JSGF V1.0;\ngrammar captcha;\npublic <said> = ( " + " | ".join(names) + " )+ ;\n"
                )
                decoder.activate_search("captcha")
            self._decoder = decoder
        return self._decoder

    def prepare(self, image, length):
        return np.ascontiguousarray(image, np.int16)

    def read_prepared(self, batch):
        by_word = {w: c for c, w in self.words().items()}
        out = []
        decoder = self.decoder()
        for samples in batch:
            decoder.start_utt()
            decoder.process_raw(samples.tobytes(), full_utt=True)
            decoder.end_utt()
            said = decoder.hyp().hypstr.split() if decoder.hyp() else []
            text = "".join(by_word.get(w, by_word.get(w.lower(), "")) for w in said)
            out.append(Reading(text, [1.0] * len(text)))
        return out
