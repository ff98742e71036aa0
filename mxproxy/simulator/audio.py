"""Playable voicemail audio: 8 kHz, 16-bit, mono PCM WAV built with the ``wave`` module.

The demo's voicemails are real files a phone can play, so the download path is tested with
bytes that mean something. Generation is deterministic: regenerating gives identical files.
"""

from __future__ import annotations

import io
import math
import struct
import wave
from array import array
from pathlib import Path

__all__ = ["RATE", "WAV_HEADER_SIZE", "tone_wav", "speech_like_wav", "wav_of_size", "write_demo_audio"]

RATE = 8000
WAV_HEADER_SIZE = 44
_AMPLITUDE = 9000


def _to_wav(samples: array) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        if samples.itemsize != 2:
            raise ValueError("samples must be 16-bit")
        data = samples.tobytes() if struct.pack("=h", 1) == struct.pack("<h", 1) else _swapped(samples)
        out.writeframes(data)
    return buf.getvalue()


def _swapped(samples: array) -> bytes:
    copy = array("h", samples)
    copy.byteswap()
    return copy.tobytes()


def tone_wav(seconds: float, frequency: float = 440.0) -> bytes:
    """A plain sine tone with short fades (cheap; used for generated recordings and big mailboxes)."""
    n = max(1, int(seconds * RATE))
    fade = min(n // 2, RATE // 50)
    step = 2 * math.pi * frequency / RATE
    samples = array("h", bytes(2 * n))
    for i in range(n):
        gain = min(1.0, i / fade, (n - 1 - i) / fade) if fade else 1.0
        samples[i] = int(_AMPLITUDE * gain * math.sin(step * i))
    return _to_wav(samples)


# (first formant, second formant) of a few vowels, in Hz
_VOWELS = ((730, 1090), (530, 1840), (270, 2290), (570, 840), (300, 870), (660, 1720))


def speech_like_wav(seconds: float, pitch: float = 120.0, seed: int = 1) -> bytes:
    """A voice-like signal: a gliding glottal pitch shaped by vowel formants, in syllables.

    Not intelligible, but it sounds like someone talking on a phone line, which makes the demo's
    voicemails recognisable when played.
    """
    n = max(1, int(seconds * RATE))
    samples = array("h", bytes(2 * n))
    syllable = int(RATE * 0.22)
    gap = int(RATE * 0.06)
    period = syllable + gap
    phase = 0.0
    for start in range(0, n, period):
        index = (start // period) * 7 + seed
        f1, f2 = _VOWELS[index % len(_VOWELS)]
        # a pause between "words" every few syllables
        if (start // period + seed) % 5 == 4:
            continue
        length = min(syllable, n - start)
        base = pitch * (1.0 + 0.12 * math.sin(index))
        harmonics = [
            (h, 1.0 / h * (math.exp(-(((h * base) - f1) / 180.0) ** 2) + 0.6 * math.exp(-(((h * base) - f2) / 250.0) ** 2) + 0.05))
            for h in range(1, int(3400 / base) + 1)
        ]
        norm = sum(w for _, w in harmonics)
        for i in range(length):
            envelope = math.sin(math.pi * i / length) ** 2
            f0 = base * (1.0 + 0.08 * (i / length - 0.5))
            phase += 2 * math.pi * f0 / RATE
            value = sum(w * math.sin(h * phase) for h, w in harmonics) / norm
            samples[start + i] = int(max(-32767, min(32767, _AMPLITUDE * 2.2 * envelope * value)))
    return _to_wav(samples)


def wav_of_size(total_bytes: int, frequency: float = 440.0) -> bytes:
    """A valid WAV file of exactly ``total_bytes`` bytes (header included), for synthetic mailboxes."""
    if total_bytes < WAV_HEADER_SIZE + 2 or (total_bytes - WAV_HEADER_SIZE) % 2:
        raise ValueError("a 16-bit WAV file is 44 header bytes plus an even number of sample bytes")
    frames = (total_bytes - WAV_HEADER_SIZE) // 2
    data = tone_wav(frames / RATE, frequency)
    if len(data) != total_bytes:  # rounding of seconds→frames; rebuild exactly
        samples = array("h", bytes(2 * frames))
        step = 2 * math.pi * frequency / RATE
        for i in range(frames):
            samples[i] = int(_AMPLITUDE * math.sin(step * i))
        data = _to_wav(samples)
    return data


def write_demo_audio(folder: Path) -> list[Path]:
    """(Re)generate the demo fixture's audio files; both are > 32 KiB so they download in chunks."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "vm82.wav": speech_like_wav(29.0, pitch=115.0, seed=1),  # the README's duration 29
        "vm117.wav": speech_like_wav(7.0, pitch=140.0, seed=4),
    }
    written = []
    for name, data in files.items():
        path = folder / name
        path.write_bytes(data)
        written.append(path)
    return written


if __name__ == "__main__":  # python -m mxproxy.simulator.audio
    for p in write_demo_audio(Path(__file__).parent / "fixtures" / "audio"):
        print(p, p.stat().st_size)
