"""Words kept by `--method revoice`: WER against the corpus's reference transcripts, of the original recordings and
of their revoiced versions, with the same recognizer (Whisper tiny.en, the one revoice itself listens with), and
word disagreement (revoiced against original) on every VCTK recording of the corpus.

Usage: python benchmarks/revoice_words.py [CORPUS] [--key-pairs 1,2,3,4] [--listener evaluate|revoice]

Revoices every VCTK recording of CORPUS/speakers.tsv (and every other recording that has a transcript) at speaker
level with each public key pair's owner key (pair N: SHA-256 of "ownerN", as benchmarks/privacy.py draws them),
and prints, for the originals and for each key and their mean, the WER on the recordings with transcripts (the
goal: at most twice the originals') and the word disagreement on the VCTK recordings.

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument("--key-pairs", default="1,2,3,4", help="public key pairs (default 1,2,3,4)")
    parser.add_argument("--listener", choices=("evaluate", "revoice"), default="evaluate")
    args = parser.parse_args()
    with open(args.corpus / "speakers.tsv", encoding="utf-8") as fh:
        rows = [row for row in csv.DictReader(fh, delimiter="\t")
                if row["transcript"].strip() or row["corpus"] == "vctk"]
    hear = listener(args.listener)
    audio = [sf.read(args.corpus / row["path"]) for row in rows]
    texts = [i for i, row in enumerate(rows) if row["transcript"].strip()]
    vctk = [i for i, row in enumerate(rows) if row["corpus"] == "vctk"]
    references = [normalize(rows[i]["transcript"]) for i in texts]
    originals = [hear(y, sr) for y, sr in audio]

    def figures(heard: list[str]) -> tuple[float, float]:
        wer, _ = word_error_rate(references, [heard[i] for i in texts])
        disagreement, _ = word_error_rate([originals[i] for i in vctk], [heard[i] for i in vctk])
        return wer, disagreement

    print(f"{len(texts)} recordings with transcripts, {len(vctk)} VCTK recordings; listener {args.listener}")
    print(f"  originals          WER {figures(originals)[0]:.1%}")
    found = []
    for pair in (int(p) for p in args.key_pairs.split(",")):
        key = SecretKey(hashlib.sha256(f"owner{pair}".encode()).digest())
        heard = [hear(anonymize(y, sr=sr, key=key, speaker=row["speaker"], method="revoice"), sr)
                 for (y, sr), row in zip(audio, rows)]
        found.append(figures(heard))
        print(f"  revoice, pair {pair}    WER {found[-1][0]:.1%}, word disagreement {found[-1][1]:.1%}", flush=True)
    wer, disagreement = (sum(f[i] for f in found) / len(found) for i in (0, 1))
    print(f"  revoice, mean      WER {wer:.1%} (goal: at most {2 * figures(originals)[0]:.1%}, twice the "
          f"originals'), word disagreement {disagreement:.1%}")


if __name__ == "__main__":
    main()
