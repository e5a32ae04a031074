"""`privspeech noise`, `stats` and `budget` through the real CLI: the ledger through a whole pipeline."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import soundfile as sf

from conftest import VCTK, no_temp_files, records, run_cli


@pytest.fixture
def calls(tmp_path):
    """Two speakers x two real VCTK recordings, scanned into a manifest."""
    src = tmp_path / "calls"
    for speaker in ("p225", "p226"):
        (src / speaker).mkdir(parents=True)
        for path in sorted((VCTK / speaker).glob("*.wav"))[:2]:
            shutil.copy(path, src / speaker / path.name)
    scanned = run_cli(["scan", src, "--speaker-from", "dir", "-q"])
    assert scanned.returncode == 0, scanned.stderr
    return src, scanned.stdout


@pytest.mark.slow
def test_ledger_round_trip_through_a_pipeline(calls, tmp_path):
    src, manifest = calls
    first = run_cli(["noise", "--epsilon", "3", "--unit", "window:160", "--out-dir", tmp_path / "dp1"], input=manifest)
    assert first.returncode == 0, first.stderr
    assert b"does not hide who is speaking" in first.stderr
    second = run_cli(["noise", "--rho", "0.5", "--mechanism", "gaussian", "--out-dir", tmp_path / "dp2"],
                     input=first.stdout)
    assert second.returncode == 0, second.stderr
    out = records(second.stdout.decode())
    assert len(out) == 4
    for rec in out:
        laplace, gauss = rec["privspeech"]["ops"]
        assert laplace["mechanism"] == "discrete-laplace" and laplace["epsilon"] == 3.0
        assert laplace["unit"] == "window:160"
        assert gauss["mechanism"] == "discrete-gaussian" and gauss["rho"] == 0.5
        for op in (laplace, gauss):  # the CLI's noise comes from the secure generator
            assert op["private"] is True and "chacha20/os.urandom" in op["sampler"]
        y, _ = sf.read(tmp_path / "dp2" / rec["audio_filepath"], dtype="int16")
        assert sf.info(tmp_path / "dp2" / rec["audio_filepath"]).subtype == "PCM_16" and y.dtype == np.int16
    assert no_temp_files(tmp_path)

    stats = run_cli(["stats", "--dataset", tmp_path / "dp2", "--epsilon", "1", "--max-per-speaker", "2",
                     "--stat", "count", "--group-by", "speaker", "--groups", "p225,p226"], input=second.stdout)
    assert stats.returncode == 0, stats.stderr
    released = json.loads(stats.stdout)
    assert set(released["statistics"]["count"]) == {"p225", "p226", "(other)"}
    assert released["ledger"]["unit"] == "speaker" and b"one speaker's whole contribution" in stats.stderr

    budget = run_cli(["budget", "--dataset", tmp_path / "dp2", "--delta", "1e-6"], input=second.stdout)
    assert budget.returncode == 0, budget.stderr
    lines = {(line["speaker"], line["unit"]): line for line in records(budget.stdout.decode())}
    assert set(lines) == {(s, u) for s in ("p225", "p226") for u in ("window:160", "sample", "speaker")}
    for speaker in ("p225", "p226"):  # one line per unit, never summed; each speaker's two recordings in parallel
        window, sample, whole = (lines[speaker, u] for u in ("window:160", "sample", "speaker"))
        assert window["epsilon"] == 3.0 and window["recordings"] == 2 and window["releases"] == 2
        assert window["composition"] == "largest over 2 recording(s) of the sum within each"
        assert sample["rho"] == 0.5 and sample["pure_epsilon"] == 0 and sample["delta"] == 1e-6
        assert whole["epsilon"] == 1.0 and whole["records"] == 2 and "dataset ledger" in whole["composition"]
        assert all(line["not_private_ops"] == 0 for line in (window, sample, whole))

    refused = run_cli(["noise", "--epsilon", "2", "--unit", "window:160", "--max-epsilon", "4.5", "--out-dir",
                       tmp_path / "dp3"], input=second.stdout)
    assert refused.returncode == 65 and b"budget exceeded" in refused.stderr
    assert b"unit window:160: privacy budget exceeded: spent epsilon 3, this operation" in refused.stderr
    assert not (tmp_path / "dp3").exists()
    other_unit = run_cli(["noise", "--epsilon", "2", "--unit", "window:320", "--max-epsilon", "4.5", "--out-dir",
                          tmp_path / "dp4", "-q"], input=second.stdout)
    assert other_unit.returncode == 0, other_unit.stderr  # window:320 starts at 0: units are held apart
    over = run_cli(["budget", "--dataset", tmp_path / "dp2", "--max-epsilon", "5"], input=second.stdout)
    assert over.returncode == 65 and len(records(over.stdout.decode())) == 6
    assert b"p225 in unit sample (5.222)" in over.stderr and b"window:160" not in over.stderr
    stats_refused = run_cli(["stats", "--dataset", tmp_path / "dp2", "--epsilon", "1", "--max-per-speaker", "2",
                             "--max-epsilon", "1.5"], input=second.stdout)
    assert stats_refused.returncode == 65 and b"unit speaker" in stats_refused.stderr
    assert len((tmp_path / "dp2" / ".privspeech" / "dp-ledger.jsonl").read_text().splitlines()) == 1


@pytest.mark.slow
def test_seed_is_reproducible_marked_and_warned(calls, tmp_path):
    src, manifest = calls
    runs = [run_cli(["noise", "--epsilon", "5", "--seed", "7", "-o", tmp_path / f"{i}.wav", src / "p225" /
                     sorted((src / "p225").iterdir())[0].name, "--emit-manifest"]) for i in range(2)]
    assert [r.returncode for r in runs] == [0, 0], runs[0].stderr
    assert (tmp_path / "0.wav").read_bytes() == (tmp_path / "1.wav").read_bytes()
    assert b"NOT PRIVATE" in runs[0].stderr
    op = records(runs[0].stdout.decode())[0]["privspeech"]["ops"][-1]
    assert op["private"] is False and "seeded" in op["sampler"]
    budget = run_cli(["budget"], input=runs[0].stdout)
    assert records(budget.stdout.decode())[0]["not_private_ops"] == 1


@pytest.mark.parametrize("args", [["--epsilon", "0"], pytest.param(["--epsilon", "nan"], marks=pytest.mark.slow),
                                  pytest.param(["--epsilon", "1", "--unit", "window:0"], marks=pytest.mark.slow),
                                  ["--epsilon", "1", "--unit", "frame"],
                                  pytest.param(["--epsilon", "1", "--mechanism", "gaussian"], marks=pytest.mark.slow),
                                  ["--rho", "1"],
                                  pytest.param(["--epsilon", "1", "--delta", "1e-6"], marks=pytest.mark.slow)])
def test_bad_noise_options_are_usage_errors(calls, tmp_path, args):
    src, _ = calls
    result = run_cli(["noise", src, "--out-dir", tmp_path / "out", *args])
    assert result.returncode == 2, result.stderr
    assert b"Traceback" not in result.stderr and not (tmp_path / "out").exists()


@pytest.mark.slow
def test_float_and_24_bit_files_keep_their_format(calls, tmp_path):
    src, _ = calls
    y, sr = sf.read(sorted((src / "p226").iterdir())[0])
    sf.write(tmp_path / "f.wav", y, sr, subtype="FLOAT")
    sf.write(tmp_path / "s24.wav", y, sr, subtype="PCM_24")
    for name, subtype, sensitivity in (("f", "FLOAT", 2.0**13), ("s24", "PCM_24", 2.0**32 - 1)):
        out = tmp_path / f"{name}.dp.wav"
        result = run_cli(["noise", tmp_path / f"{name}.wav", "--epsilon", "100", "--grid-bits", "12", "-o", out,
                          "--emit-manifest"])
        assert result.returncode == 0, result.stderr
        assert sf.info(out).subtype == subtype
        op = records(result.stdout.decode())[0]["privspeech"]["ops"][-1]
        assert op["sensitivity"]["l1"] == sensitivity
        noisy, _ = sf.read(out)
        if subtype == "FLOAT":
            assert np.array_equal(noisy * 2**12, np.rint(noisy * 2**12)) and np.abs(noisy).max() <= 1.0
        else:
            assert np.array_equal(noisy * 2**23, np.rint(noisy * 2**23))


@pytest.mark.slow
def test_noise_warns_when_it_will_drown_speech_and_the_warning_is_honest(tmp_path):
    """The up-front warning (shown even with -q) matches what the output measures: at epsilon 8 per 160-sample
    window the noise buries speech; at epsilon 50 per sample the speech stays above it."""
    src = VCTK / "p226" / "p226_003.wav"
    clean, _ = sf.read(src, dtype="int16")
    measured = {}
    for name, args in (("loud", ["--epsilon", "8", "--unit", "window:160"]), ("audible", ["--epsilon", "50"])):
        proc = run_cli(["noise", src, *args, "-o", tmp_path / f"{name}.wav", "-q"])
        assert proc.returncode == 0, proc.stderr
        noised, _ = sf.read(tmp_path / f"{name}.wav", dtype="int16")
        error = noised.astype(float) - clean
        measured[name] = (10 * np.log10(np.mean(clean.astype(float) ** 2) / np.mean(error ** 2)), proc.stderr.decode())
    snr, stderr = measured["loud"]
    assert "warning: the noise will be" in stderr and "louder than speech" in stderr and snr < -10  # clipping caps it
    snr, stderr = measured["audible"]
    assert stderr == "" and snr > 0
