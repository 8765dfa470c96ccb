"""PCM16 (little-endian, mono) helpers: resampling between the rates the protocols use, and the local
model's synthesised speech.

OpenAI Realtime speaks 24 kHz both ways; Gemini Live takes 16 kHz in and gives 24 kHz out. Linear
interpolation is enough for speech at these rates and needs no library.
"""

from __future__ import annotations

import math
import sys
from array import array

OPENAI_RATE = 24_000
GEMINI_INPUT_RATE = 16_000
WORD_SECONDS = 0.2
"""The local model says each word as a tone this long."""
WORD_SAMPLES = int(OPENAI_RATE * WORD_SECONDS)


def _samples(pcm: bytes) -> array[int]:
    out = array("h")
    out.frombytes(pcm[: len(pcm) - len(pcm) % 2])
    if sys.byteorder == "big":
        out.byteswap()
    return out


def _bytes(samples: array[int]) -> bytes:
    if sys.byteorder == "big":
        samples.byteswap()
    return samples.tobytes()


def resample(pcm: bytes, src: int, dst: int) -> bytes:
    """PCM16 at `src` Hz → PCM16 at `dst` Hz; the output has round(n × dst / src) samples."""
    if src == dst or not pcm:
        return pcm
    samples = _samples(pcm)
    n = len(samples)
    count = round(n * dst / src)
    out = array("h", bytes(2 * count))
    step = src / dst
    for i in range(count):
        pos = i * step
        j = int(pos)
        if j >= n - 1:
            out[i] = samples[n - 1]
            continue
        frac = pos - j
        out[i] = int(samples[j] + (samples[j + 1] - samples[j]) * frac)
    return _bytes(out)


def tone(word: str, samples: int = WORD_SAMPLES, rate: int = OPENAI_RATE) -> bytes:
    """A short tone whose pitch depends on the word (deterministic), faded in and out."""
    freq = 220 + (sum(word.encode()) % 24) * 20
    fade = max(1, samples // 10)
    out = array("h", bytes(2 * samples))
    for i in range(samples):
        envelope = min(1.0, i / fade, (samples - 1 - i) / fade)
        out[i] = int(8000 * envelope * math.sin(2 * math.pi * freq * i / rate))
    return _bytes(out)


def seconds(pcm_bytes: int, rate: int = OPENAI_RATE) -> float:
    return pcm_bytes / 2 / rate
