"""Audio CAPTCHAs: the accessible alternative a visual CAPTCHA offers, characters spoken over
noise. The answer is the characters, scored by the text rules (text.py); what differs is the
medium: a challenge's file is a WAV (`media = "audio"`: 16-bit mono at sound.SAMPLE_RATE, read
through the one safe decoder) and its waveform travels where an image travels (1-D int16
samples). labels.csv: `filename,text`, as for text (WAV files under that header are read as
audio); boxes.json holds each character's time span as a box `[start, 0, end, 1]` in samples
(end exclusive), so `samples[start:end]` is the character, as a text box slices its pixels.
Reports draw a challenge as its log-mel spectrogram, a misread one with what the reader heard.
"""

from __future__ import annotations

import cv2

from ..sound import spectrogram_picture
from .text import TextKind


class AudioKind(TextKind):
    name, columns, media, example_style = "audio", ("text",), "audio", "spoken"
    default_attacker = "audioctc"
    audit_readers = ()
    asks = "Type the characters you hear."
    widget, replays = "audio", True  # the page plays it (replays allowed and counted) and takes typed text
    view = "challenge"
    per_style_columns = (("captcha_accuracy", "CAPTCHA acc."), ("char_accuracy", "char acc."))

    def picture(self, media):
        return spectrogram_picture(media)

    def seen(self, image, item):
        """The spectrogram, each character's true time span marked beneath it (when known)."""
        picture = self.picture(image)
        frames = picture.shape[1]
        for k, box in enumerate(item.true_boxes or []):
            x0, x1 = (int(v * frames / max(1, len(image))) for v in (box[0], box[2]))
            cv2.rectangle(picture, (x0, picture.shape[0] - 6), (max(x0, x1 - 1), picture.shape[0] - 1),
                          (255, 255, 255) if k % 2 else (0, 200, 255), -1)  # fmt: skip
        return picture

    def describe_reading(self, found, truth):
        return f"hears {found or '?'}" + (f" (truth {truth})" if truth is not None else "")

    def solver_prompt(self, question, charset, length):
        return ""  # a vision-language model cannot hear it

    def explore_images(self, image, question, parts, found, truth):
        return []  # the challenge itself is drawn as its spectrogram (picture), and played
