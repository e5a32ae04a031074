"""Words kept by `--method revoice`: WER against reference texts, of the original recordings and of their revoiced
versions, with the same recognizer (Whisper tiny.en, the one revoice itself listens with), and word disagreement
(revoiced against original).

Usage: python benchmarks/revoice_words.py [CORPUS] [--key-pairs 1,2,3,4] [--listener evaluate|revoice]

Revoices every VCTK and FSDD recording of CORPUS/speakers.tsv at speaker level with each public key pair's owner
key (pair N: SHA-256 of "ownerN", as benchmarks/privacy.py draws them), and prints, for the originals, for each key
and for their mean, per reference set the WER (the goal: at most twice the originals') and the word disagreement.
The reference sets: the 7 VCTK prompts speakers.tsv transcribes, and FSDD's 60 digit strings, each "zero one ...
nine" by construction (the corpus's LICENSES.md: each file joins one take of the ten digits in order); the word
disagreement is over all 40 VCTK recordings, and over the 60 FSDD ones.

`--listener evaluate` (the default) hears with `privspeech evaluate`'s transcriber, whose temperature fallback can
drop or add a phrase from one run to the next; `--listener revoice` hears with revoice's own recogniser
(temperature 0, voice activity filter), which gives the same words for the same audio, so settings can be compared
by differences of a point or two.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import sys
import warnings
from pathlib import Path

import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
warnings.filterwarnings("ignore", message="pkg_resources is deprecated")

from privspeech.evaluate.asr import Transcriber, normalize, word_error_rate  # noqa: E402
from privspeech.keys import SecretKey  # noqa: E402
from privspeech.voice import anonymize  # noqa: E402

DEFAULT = REPO.parent / "shared" / "corpus"


def listener(name: str):
    """A function from (audio, rate) to normalized words."""
    if name == "evaluate":
        transcriber = Transcriber()
        return lambda y, sr: normalize(transcriber.transcribe(y, sr=sr))
    from privspeech.voice.revoice import recognize, resample

    return lambda y, sr: normalize(" ".join(w.text for w in recognize.words(resample(y, sr, recognize.RATE))))


FSDD_TEXT = "zero one two three four five six seven eight nine"  # every fsdd-concat recording's words


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument("--key-pairs", default="1,2,3,4", help="public key pairs (default 1,2,3,4)")
    parser.add_argument("--listener", choices=("evaluate", "revoice"), default="evaluate")
    args = parser.parse_args()
    with open(args.corpus / "speakers.tsv", encoding="utf-8") as fh:
        rows = [row for row in csv.DictReader(fh, delimiter="\t") if row["corpus"] in ("vctk", "fsdd-concat")]
    hear = listener(args.listener)
    audio = [sf.read(args.corpus / row["path"]) for row in rows]
    sets = {"VCTK": ([i for i, row in enumerate(rows) if row["transcript"].strip()],
                     [i for i, row in enumerate(rows) if row["corpus"] == "vctk"]),
            "FSDD": ([i for i, row in enumerate(rows) if row["corpus"] == "fsdd-concat"],) * 2}
    references = [normalize(row["transcript"] or (FSDD_TEXT if row["corpus"] == "fsdd-concat" else "")) for row in rows]
    originals = [hear(y, sr) for y, sr in audio]

    def figures(heard: list[str]) -> dict[str, tuple[float, float]]:
        return {name: (word_error_rate([references[i] for i in texts], [heard[i] for i in texts])[0],
                       word_error_rate([originals[i] for i in others], [heard[i] for i in others])[0])
                for name, (texts, others) in sets.items()}

    def show(label: str, found: dict[str, tuple[float, float]]) -> None:
        print(f"  {label:<18}" + "; ".join(f"{name} WER {wer:.1%}, word disagreement {disagreement:.1%}"
                                            for name, (wer, disagreement) in found.items()), flush=True)

    print("listener " + args.listener + "; " + ", ".join(
        f"{name}: {len(texts)} recordings with reference texts, disagreement over {len(others)}"
        for name, (texts, others) in sets.items()))
    base = figures(originals)
    print("  originals         " + "; ".join(f"{name} WER {wer:.1%}" for name, (wer, _) in base.items()))
    found = []
    for pair in (int(p) for p in args.key_pairs.split(",")):
        key = SecretKey(hashlib.sha256(f"owner{pair}".encode()).digest())
        heard = [hear(anonymize(y, sr=sr, key=key, speaker=row["speaker"], method="revoice"), sr)
                 for (y, sr), row in zip(audio, rows)]
        found.append(figures(heard))
        show(f"revoice, pair {pair}", found[-1])
    show("revoice, mean", {name: tuple(sum(f[name][i] for f in found) / len(found) for i in (0, 1)) for name in sets})
    print("  goal               " + "; ".join(f"{name} WER at most {2 * base[name][0]:.1%} (twice the originals')"
                                             for name in sets))


if __name__ == "__main__":
    main()
