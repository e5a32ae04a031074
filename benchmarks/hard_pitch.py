"""Pitch on the hard set measured against the clean source, not the degraded recording.

Usage: python benchmarks/hard_pitch.py [CORPUS] [--per-slice N] [--key-pair N]

`privacy.py --set hard` compares harvest's F0 contour of each output with that of its degraded input, so harvest's
own errors on telephone, babble or reverberant speech count as the conversion's. Here each degraded LibriSpeech
half of `hard_set.py` is also taken before degradation (the same cut of the same recording), and the default world
conversion (speaker level, the owner key of public pair N) and WORLD resynthesis alone (the default's analysis)
are compared with both references. FSDD has no clean source and is left out. Prints per slice and pooled: the
log-F0 correlation, the same without gross errors, and the share of gross errors (frames more than 20 % off the
fitted line), as `privspeech evaluate` defines them.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parent))

import hard_set  # noqa: E402
from privacy import key_pair  # noqa: E402
from privspeech import voice  # noqa: E402
from privspeech.evaluate import attacks, pairs  # noqa: E402
from privspeech.evaluate.preservation import compare_contours, f0_contour, summarize_pitch  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[1])
    parser.add_argument("corpus", nargs="?", type=Path, default=hard_set.REPO.parent / "shared" / "corpus")
    parser.add_argument("--per-slice", type=int, default=8)
    parser.add_argument("--key-pair", type=int, default=1)
    args = parser.parse_args()
    owner, _ = key_pair(args.key_pair)
    clean = {hard_set.utterance_id(name, u, half): (part, sr)
             for name, u, half, part, sr in hard_set.clean_halves(args.corpus, per_slice=args.per_slice)}
    results: dict[tuple[str, str, str], list] = {}
    with tempfile.TemporaryDirectory() as workdir:
        for u in hard_set.build(args.corpus, Path(workdir), per_slice=args.per_slice):
            if u.id not in clean:
                continue
            y, sr = pairs.load(u.original)
            outputs = {"world": voice.anonymize(y, sr=sr, key=owner, speaker=u.speaker, utterance=u.id),
                       "resynth": attacks.world_resynthesis(y, sr=sr, f0_method="rapt")}
            references = {"degraded": f0_contour(y, sr=sr), "clean": f0_contour(clean[u.id][0], sr=clean[u.id][1])}
            for system, out in outputs.items():
                contour = f0_contour(out, sr=sr)
                for reference, ref in references.items():
                    n = min(len(ref), len(contour))
                    agreement = compare_contours(ref[:n], contour[:n])
                    for group in (hard_set.slice_of(u.id), "pooled"):
                        results.setdefault((group, system, reference), []).append(agreement)
    print(f"hard set pitch, {args.per_slice} speakers per degraded slice, key pair {args.key_pair} "
          f"(r: log-F0 correlation; r w/o: without gross errors; gross: % of frames voiced in both)")
    print(f"{'slice':10} {'system':8} {'reference':9} {'utt':>4} {'r':>6} {'r w/o':>6} {'gross %':>8}")
    for (group, system, reference), values in sorted(results.items(), key=lambda kv: (kv[0][0] == "pooled", kv[0])):
        s = summarize_pitch(values)
        print(f"{group:10} {system:8} {reference:9} {s['used']:4d} {s['correlation']:6.3f} "
              f"{s['correlation_without_gross']:6.3f} {100 * s['gross_error_rate']:8.1f}")


if __name__ == "__main__":
    main()
