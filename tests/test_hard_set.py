"""The `hard` benchmark set's builder (benchmarks/hard_set.py): deterministic, and each slice degraded as it says.

Runs on a small corpus made here from the sample recordings (real speech), laid out as the shared corpus is.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import REPO, SAMPLES

sys.path.insert(0, str(REPO / "benchmarks"))
import hard_set  # noqa: E402

SPEAKERS = 14  # 4 kept out (the babble talkers) + 5 slices x 2


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    speech = np.concatenate([sf.read(SAMPLES / "201" / "201-122255-0000.flac")[0],
                             sf.read(SAMPLES / "211" / "211-122425-0000.flac")[0]])  # 9.5 s
    rows = ["path\tspeaker\tgender\tcorpus\tduration_s\tsample_rate\ttranscript"]
    for i in range(SPEAKERS):
        speaker, gender = f"{1000 + i}", "FM"[i % 2]
        path = root / "librispeech-train-clean-100" / speaker / f"{speaker}-1-0000.flac"
        path.parent.mkdir(parents=True)
        sf.write(path, np.roll(speech, 4000 * i), 16000, subtype="PCM_16")
        rows.append(f"librispeech-train-clean-100/{speaker}/{path.name}\t{speaker}\t{gender}\tlibrispeech\t9.5\t16000\t")
    digits = root / "fsdd-concat" / "jackson" / "jackson_take00.wav"
    digits.parent.mkdir(parents=True)
    digits.write_bytes((SAMPLES / "jackson" / "jackson_take00.wav").read_bytes())
    rows.append("fsdd-concat/jackson/jackson_take00.wav\tjackson\tM\tfsdd-concat\t6.7\t8000\t")
    (root / "speakers.tsv").write_text("\n".join(rows) + "\n")
    return root


def test_the_same_corpus_gives_the_same_bytes(corpus, tmp_path):
    first = hard_set.build(corpus, tmp_path / "one", per_slice=2, skip=4)
    second = hard_set.build(corpus, tmp_path / "two", per_slice=2, skip=4)
    assert [u.id for u in first] == [u.id for u in second]
    names = sorted(p.name for p in (tmp_path / "one").iterdir())
    assert len(names) == 5 * 2 * 2
    assert all((tmp_path / "one" / n).read_bytes() == (tmp_path / "two" / n).read_bytes() for n in names)


def test_each_slice_is_degraded_as_documented(corpus, tmp_path):
    utterances = hard_set.build(corpus, tmp_path, per_slice=2, skip=4)
    assert {hard_set.slice_of(u.id) for u in utterances} == set(hard_set.SLICES)
    by_slice: dict[str, list] = {}
    for u in utterances:
        by_slice.setdefault(hard_set.slice_of(u.id), []).append(u)
    assert {u.gender for u in by_slice["babble"]} == {"F", "M"}
    for u in by_slice["telephone"]:
        y, sr = sf.read(u.original)
        power = np.abs(np.fft.rfft(y)) ** 2
        f = np.fft.rfftfreq(len(y), 1 / sr)
        assert sr == 8000 and power[f > 3600].sum() < 0.01 * power.sum()
    for u in by_slice["quiet"]:
        y, _ = sf.read(u.original)
        assert abs(20 * np.log10(np.sqrt(np.mean(y ** 2))) + 35) < 0.5
    for u in by_slice["clipped"]:
        y, _ = sf.read(u.original)
        assert 0.005 < np.mean(np.abs(y) >= 32767 / 32768) < 0.06
    halves = [u for u in by_slice["reverb"] if u.speaker == by_slice["reverb"][0].speaker]
    assert [u.id[-2:] for u in halves] == ["#a", "#b"]
    assert by_slice["fsdd"][0].original.endswith("jackson_take00.wav")
