"""Bad audio in every audio stage: a corrupt or truncated FLAC, and a recording without samples, each end in one
DATAERR line naming the file (exit 65 for one file, 1 in a batch whose other records go on), never in an
"internal error", and charge no privacy budget."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import soundfile as sf

from conftest import SAMPLES, no_temp_files, records

FLAC = SAMPLES / "211" / "211-122425-0000.flac"
WAV = SAMPLES / "p225" / "p225_003.wav"


def corrupt(path):
    """The real FLAC with 2,000 bytes a third of the way in scrambled: the decoder loses sync there."""
    data = bytearray(FLAC.read_bytes())
    start = len(data) // 3
    data[start:start + 2000] = bytes((b * 7 + 13) & 0xFF for b in data[start:start + 2000])
    path.write_bytes(bytes(data))
    return path


def truncated(path):
    path.write_bytes(FLAC.read_bytes()[:40000])
    return path


def zero_samples(path):
    sf.write(path, np.zeros((0, 1)), 16000)
    return path


BAD = {"corrupt.flac": (corrupt, "corrupt audio data"), "truncated.flac": (truncated, "corrupt audio data"),
       "zero.wav": (zero_samples, "zero-length recording")}
STAGES = {
    "anonymize": ["anonymize", "-q"],
    "anonymize --dp-epsilon": ["anonymize", "--dp-epsilon", "5", "-q"],
    "noise": ["noise", "--epsilon", "8", "--unit", "window:160", "-q"],
}


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("bad", BAD)
def test_one_bad_file_exits_65_with_one_line(tmp_path, cli, stage, bad):
    make, words = BAD[bad]
    src = make(tmp_path / bad)
    out = tmp_path / "out.wav"
    result = cli([*STAGES[stage], src, "-o", out])
    assert result.exit_code == 65, result.stderr
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and f"{src}: {words}" in errors[0] and "internal error" not in result.stderr
    assert "Traceback" not in result.stderr and not out.exists() and no_temp_files(tmp_path)


@pytest.mark.parametrize("stage", STAGES)
def test_a_batch_reports_bad_files_and_charges_only_the_good_ones(tmp_path, cli, stage):
    src = tmp_path / "calls" / "spk"
    src.mkdir(parents=True)
    shutil.copy(WAV, src / "good.wav")
    for name, (make, _) in BAD.items():
        make(src / name)
    result = cli([*STAGES[stage], tmp_path / "calls", "--out-dir", tmp_path / "out", "-j", "1"])
    assert result.exit_code == 1, result.stderr
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr
    for name, (_, words) in BAD.items():
        assert f"{src / name}: {words}" in result.stderr
    released = records(result.stdout)
    assert [r["id"] for r in released] == ["spk/good"]
    assert sorted(p.name for p in (tmp_path / "out" / "spk").iterdir()) == ["good.wav"]
    budget = cli(["budget"], input=result.stdout)
    assert budget.exit_code == 0 and len(records(budget.stdout)) == 1  # the good record's line only


def test_scan_refuses_a_recording_without_samples(tmp_path, cli):
    result = cli(["scan", zero_samples(tmp_path / "zero.wav")])
    assert result.exit_code == 1 and "zero-length recording" in result.stderr and result.stdout == ""
