"""Words kept by `--method revoice`: WER against the corpus's reference transcripts, of the original recordings and
of their revoiced versions, with the same recognizer (Whisper tiny.en, the one revoice itself listens with).

Usage: python benchmarks/revoice_words.py [CORPUS] [--key-pairs 1,2,3,4]

Takes every recording of CORPUS/speakers.tsv that has a transcript, revoices it at speaker level with each public
key pair's owner key (pair N: SHA-256 of "ownerN", as benchmarks/privacy.py draws them), and prints the WER of the
originals, of each key's outputs and their mean, and the goal (at most twice the originals').
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument("--key-pairs", default="1,2,3,4", help="public key pairs (default 1,2,3,4)")
    args = parser.parse_args()
    with open(args.corpus / "speakers.tsv", encoding="utf-8") as fh:
        rows = [row for row in csv.DictReader(fh, delimiter="\t") if row["transcript"].strip()]
    transcriber = Transcriber()
    references = [normalize(row["transcript"]) for row in rows]
    audio = [sf.read(args.corpus / row["path"]) for row in rows]
    original, words = word_error_rate(references, [normalize(transcriber.transcribe(y, sr=sr)) for y, sr in audio])
    print(f"{len(rows)} recordings with transcripts ({words} used), recognizer {transcriber.model_name}")
    print(f"  originals          WER {original:.1%}")
    found = []
    for pair in (int(p) for p in args.key_pairs.split(",")):
        key = SecretKey(hashlib.sha256(f"owner{pair}".encode()).digest())
        heard = [normalize(transcriber.transcribe(anonymize(y, sr=sr, key=key, speaker=row["speaker"],
                                                            method="revoice"), sr=sr))
                 for (y, sr), row in zip(audio, rows)]
        wer, _ = word_error_rate(references, heard)
        found.append(wer)
        print(f"  revoice, pair {pair}    WER {wer:.1%}")
    mean = sum(found) / len(found)
    print(f"  revoice, mean      WER {mean:.1%} (goal: at most {2 * original:.1%}, twice the originals')")


if __name__ == "__main__":
    main()
