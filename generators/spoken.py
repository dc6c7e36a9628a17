"""Spoken audio CAPTCHAs, as the audio alternative of a visual CAPTCHA serves them: the characters
said one after another by one voice over background noise (kind "audio": docs/audio.md). Voices:
eSpeak NG's (Debian's espeak-ng) and the one recorded voice the `captcha` package ships
(generation/voices.py); the parameters are voices.PARAMS.

What `strength` produces (docs/audio.md keeps the same table):
- 0: each character clearly apart (0.4 s gaps), as the voice says it, over a faint background
  (white noise, babble or tones, 30 dB under the speech), no room, full band.
- 0.5: gaps of 0.225 s, each character's length within 15% and pitch within 2 semitones, a
  background of white noise, babble or tones (one of them each) 15 dB under the speech, a room
  of 0.25 s, half the challenges at telephone quality.
- 1: gaps of 0.05 s, length within 30%, pitch within 4 semitones, the background as loud as the
  speech (0 dB), a room of 0.5 s, every challenge at telephone quality.
"""

from __future__ import annotations

from captchalab.generation import voices
from captchalab.generator import Generator, register


@register
class Spoken(voices.Voiced, Generator):
    name = "spoken"
    description = "Characters said one after another by one voice over noise (the audio alternative)."

    def at_strength(self, s):
        return {
            "snr": round(30 - 30 * s, 2),
            "reverb": round(0.5 * s, 3),
            "gap": round(0.4 - 0.35 * s, 3),
            "stretch": round(0.3 * s, 3),
            "pitch": round(4 * s, 2),
            "telephone": round(s, 3),
        }
