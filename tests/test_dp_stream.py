"""`privspeech noise` streams in blocks: the same seeded output bytes as the whole-file version had, flat memory,
and one DATAERR line for corrupt, truncated and zero-sample inputs."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import SAMPLES, no_temp_files, records, run_cli

SPEECH = [SAMPLES / "p225" / "p225_003.wav", SAMPLES / "p226" / "p226_005.wav"]


def speech(frames: int, channels: int = 1) -> np.ndarray:
    """Real 16 kHz int16 speech, repeated to `frames` frames; channel c starts c seconds later."""
    voice = np.concatenate([sf.read(p, dtype="int16")[0] for p in SPEECH])
    reps = -(-(frames + 16000 * channels) // voice.size)
    tiled = np.tile(voice, reps)
    return np.stack([tiled[16000 * c:16000 * c + frames] for c in range(channels)], axis=1)


def build(folder: Path) -> dict[str, Path]:
    """The inputs of the golden test: every sample format noise handles, and a file of several blocks."""
    short = speech(40000)
    inputs = {"pcm16.wav": SAMPLES / "p225" / "p225_003.wav", "flac16.flac": SAMPLES / "211" / "211-122425-0000.flac"}
    written = {
        "long-stereo.wav": (speech(1_500_000, 2), "PCM_16"),  # about 2.9 blocks of 2**20 frames
        "pcm24.wav": (short.astype(np.int32) * 256 + 77, "PCM_24"),
        "pcm32.wav": (short.astype(np.int32) * 65536 + 12345, "PCM_32"),
        "float.wav": (short / 40000.0, "FLOAT"),
        "flac24.flac": (short.astype(np.int32) * 256 - 5, "PCM_24"),
    }
    for name, (data, subtype) in written.items():
        inputs[name] = folder / name
        sf.write(inputs[name], data, 16000, subtype=subtype)  # int32 data is on the 32-bit scale
    return inputs


# sha256 of the output of `noise IN MECHANISM --seed golden -o OUT.wav`, made by the whole-file implementation
# (commit 3b5acd5); for FLOAT WAV of the decoded samples, as libsndfile's PEAK chunk holds the time of writing
LAPLACE = ["--epsilon", "8", "--unit", "window:160"]
GAUSSIAN = ["--mechanism", "gaussian", "--rho", "2"]
GOLDEN = [
    ("pcm16.wav", LAPLACE, "3ccb4c0f09d7de3075effb842b7d6d91ae1f23d2293993040c101c027c47dfea"),
    ("pcm16.wav", GAUSSIAN, "aec436bcf817918e3920576cb54356960976092f462d589b2a2ba5e7b53b17d8"),
    ("flac16.flac", LAPLACE, "d3a5ccfce35d7bf39711c8bcf090437d9bd3bf5877b2427cb007c55805cf7486"),
    ("flac16.flac", GAUSSIAN, "a8ba7ff54cad1cf703755348dd48f18489cefcd39c4eca9a94a1e744b45835fd"),
    ("long-stereo.wav", LAPLACE, "0efe5b90020b038f9edc737f2fb99b17a0ad45a701ea1d3208534c0ed01e6092"),
    ("long-stereo.wav", GAUSSIAN, "5b9d7dd8346852edaab960e191e3c32782f48895ebb64f04bbc8101e9fc799a0"),
    ("pcm24.wav", LAPLACE, "5e6836e5a3325b4cd7c8f6b1e59577446201a14202b4d4cbf79671d3f00d8011"),
    ("pcm24.wav", GAUSSIAN, "68d32441ec106dab124151b36e2d1cd4d36a06c385678bd7cf4afe2508eb028b"),
    ("pcm32.wav", LAPLACE, "a68e3dabcded54640c9c113d12cace84b5863960c21db6008c636599b0fd6237"),
    ("pcm32.wav", GAUSSIAN, "1c3f39cd1f6c33f1393d58e5f0567a13c213b91e8c09f00fb5ac639798923a97"),
    ("float.wav", LAPLACE, "37e604a703d85de2f7803997653cb7b6a60d269d01e37c1692f3878dbbe57405"),
    ("float.wav", GAUSSIAN, "ac1192df07b7fa4e945ad0803b9a0527212b241c1b59d6541c4a74ad998cfd50"),
    ("flac24.flac", LAPLACE, "03125b04afffbc8fafab998249433b7fadb8d3cc489c00b2253c25ddfe94d522"),
    ("flac24.flac", GAUSSIAN, "f2bd82d5f99e205190b785749596566e1aca4e636f99ec4bacf343e92bacb08c"),
]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    return build(tmp_path_factory.mktemp("inputs"))


QUICK = {("pcm16.wav", "8"), ("flac24.flac", "gaussian")}  # the rest of GOLDEN runs only with the slow tests


@pytest.mark.parametrize("name, mechanism, expected", [
    pytest.param(n, m, e, id=f"{n}-{m[1]}", marks=() if (n, m[1]) in QUICK else pytest.mark.slow) for n, m, e in GOLDEN])
def test_seeded_output_is_what_the_whole_file_version_wrote(inputs, tmp_path, name, mechanism, expected):
    out = tmp_path / "out.wav"
    result = run_cli(["noise", inputs[name], *mechanism, "--seed", "golden", "-o", out, "--emit-manifest"])
    assert result.returncode == 0, result.stderr
    if sf.info(out).subtype == "FLOAT":
        digest = hashlib.sha256(sf.read(out, dtype="float64")[0].tobytes()).hexdigest()
    else:
        digest = hashlib.sha256(out.read_bytes()).hexdigest()
    assert digest == expected
    record = records(result.stdout.decode())[0]
    assert record["num_channels"] == sf.info(inputs[name]).channels
    assert record["duration"] == pytest.approx(sf.info(inputs[name]).frames / 16000, abs=1e-6)
    assert no_temp_files(tmp_path)


def _peak_rss_mib(args) -> float:
    """Peak RSS of the noise command, measured by GNU time (its own fork is small: a fork of this test process
    would count pytest's memory too)."""
    result = subprocess.run(["/usr/bin/time", "-f", "%M", sys.executable, "-m", "privspeech", *map(str, args)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return int(result.stderr.strip().splitlines()[-1]) / 1024


@pytest.mark.slow
@pytest.mark.skipif(not os.access("/usr/bin/time", os.X_OK), reason="needs GNU time (apt install time)")
def test_memory_stays_flat_as_the_file_grows(tmp_path):
    """16 times more audio (1 M to 16 M samples, 17 minutes at 16 kHz) costs no more memory: one block at a time
    (the whole-file version held 8 bytes per sample, 128 MiB more here)."""
    peaks = []
    for frames in (1 << 20, 1 << 24):
        src = tmp_path / f"{frames}.wav"
        sf.write(src, speech(frames), 16000, subtype="PCM_16")
        peaks.append(_peak_rss_mib(["noise", src, "--epsilon", "8", "-o", tmp_path / "out.wav", "--force", "-q"]))
    assert peaks[1] < peaks[0] + 16, peaks
