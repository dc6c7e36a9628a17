"""Continuous audio CAPTCHAs, after Bursztein et al.'s advice ("The Failure of Noise-Based
Non-Continuous Audio Captchas", IEEE S&P 2011): a classical attack finds each character as a burst
of energy between silences and classifies it; here the characters run into each other with no
silence between them, and decoy characters said by another, softer voice fall among them, so that
cutting at silences or at energy peaks yields no character. People are asked for what the louder
voice says (kind "audio": docs/audio.md; the parameters are voices.PARAMS).

What `strength` produces (docs/audio.md keeps the same table):
- 0: characters touching (no gap), two decoys 12 dB softer, babble 25 dB under the speech.
- 0.5: each character overlapping the last by 0.125 s, length within 15% and pitch within 2
  semitones, four decoys 7.5 dB softer, babble 15 dB under, a room of 0.2 s.
- 1: overlaps of 0.25 s, length within 30%, pitch within 4 semitones, six decoys 3 dB softer,
  babble 5 dB under, a room of 0.4 s, telephone quality.
"""

from __future__ import annotations

from captchalab.generation import voices
from captchalab.generator import Generator, register


@register
class Continuous(voices.Voiced, Generator):
    name = "continuous"
    description = "Characters run together among softer decoys said by another voice (no silence to cut at)."

    def at_strength(self, s):
        return {
            "noise": "babble",
            "snr": round(25 - 20 * s, 2),
            "reverb": round(0.4 * s, 3),
            "gap": round(-0.25 * s, 3),
            "stretch": round(0.3 * s, 3),
            "pitch": round(4 * s, 2),
            "telephone": 1.0 if s >= 1 else 0.0,
            "decoys": round(2 + 4 * s),
            "decoy_level": round(12 - 9 * s, 2),
        }
