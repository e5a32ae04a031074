"""DP intonation in `privspeech anonymize --dp-epsilon`: ledger entry, budget, contour vs epsilon, seeds, segments."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import soundfile as sf

from conftest import VCTK, no_temp_files, records
from privspeech.dp.rng import SecureRandom
from privspeech.errors import PrivspeechError
from privspeech.evaluate import attacks
from privspeech.evaluate.preservation import pitch_agreement
from privspeech.keys import SecretKey, generate, write_key_file
from privspeech.manifest import Record
from privspeech.voice.dp_intonation import DPSettings, IntonationBudget, anonymize_dp, dp_stream

FILES = ("p225/p225_003.wav", "p225/p225_008.wav", "p226/p226_003.wav", "p226/p226_005.wav")


@pytest.fixture
def calls(tmp_path, cli):
    """Two speakers x two real VCTK recordings, scanned; and a key file."""
    src = tmp_path / "calls"
    for name in FILES:
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(VCTK / name, src / name)
    scanned = cli(["scan", src, "--speaker-from", "dir", "-q"])
    assert scanned.exit_code == 0, scanned.stderr
    key_file = tmp_path / "anon.key"
    write_key_file(key_file, generate())
    return src, scanned.stdout, key_file


@pytest.mark.slow
def test_ledger_entry_and_budget_refusal(calls, tmp_path, cli):
    _, manifest, key_file = calls
    first = cli(["anonymize", "-k", key_file, "--dp-epsilon", "20", "--max-epsilon", "50", "--out-dir",
                 tmp_path / "a1", "-j", "1"], input=manifest)
    assert first.exit_code == 0, first.stderr
    assert "20-DP" in first.stderr and "duration and its voiced/unvoiced pattern are not covered" in first.stderr
    out = records(first.stdout)
    assert len(out) == 4
    for rec in out:
        anon, entry = rec["privspeech"]["ops"]
        assert anon["op"] == "anonymize" and anon["method"] == "world" and "mechanism" not in anon
        assert entry["op"] == "dp-intonation" and entry["mechanism"] == "discrete-laplace"
        assert entry["unit"] == "utterance" and entry["epsilon"] == 20.0 and entry["delta"] == 0.0
        assert entry["private"] is True and "chacha20/os.urandom" in entry["sampler"]
        assert entry["lattice"] == "2^-7 octave" and "clipped to ±0.25 octave" in entry["sensitivity_bound"]
        params = entry["params"]
        # 5.6-6.6 s files: one release of ceil(frames / 100) one-second segments takes the whole epsilon
        frames = int(np.ceil(round(rec["duration"] * 16000) / 160))
        assert params["planned_segments"] == params["released_segments"] == int(np.ceil(frames / 100))
        assert params["releases"] == 1
        assert entry["sensitivity"]["l1"] == params["planned_segments"] * 2 * 2 * 32
        assert entry["scale"] == pytest.approx(entry["sensitivity"]["l1"] / 20.0)
    assert no_temp_files(tmp_path / "a1")

    budget = cli(["budget"], input=first.stdout)
    assert budget.exit_code == 0, budget.stderr
    spent = {line["speaker"]: line for line in records(budget.stdout)}
    # kept by the keyed source speaker; a speaker's two recordings are two utterances: the largest counts
    assert {rec["privspeech"]["source"]["speaker"] for rec in out} == set(spent)
    assert len(spent) == 2 and all(line["unit"] == "utterance" and line["epsilon"] == 20.0 and line["records"] == 2
                                   and line["recordings"] == 2 for line in spent.values())

    refused = cli(["anonymize", "-k", key_file, "--dp-epsilon", "20", "--max-epsilon", "30", "--out-dir",
                   tmp_path / "a2"], input=first.stdout)
    assert refused.exit_code == 65
    assert "unit utterance" in refused.stderr and "spent epsilon 20" in refused.stderr
    assert "bring it to 40" in refused.stderr
    assert "--max-epsilon 30" in refused.stderr and "--dp-epsilon" in refused.stderr
    assert not (tmp_path / "a2").exists()
    over = cli(["budget", "--max-epsilon", "15"], input=first.stdout)
    assert over.exit_code == 65 and len(records(over.stdout)) == 2

    fits = cli(["anonymize", "-k", key_file, "--dp-epsilon", "5", "--max-epsilon", "30", "--out-dir",
                tmp_path / "a3", "-q"], input=first.stdout)
    assert fits.exit_code == 0, fits.stderr
    again = cli(["budget", "--max-epsilon", "30"], input=fits.stdout)
    assert again.exit_code == 0 and {line["epsilon"] for line in records(again.stdout)} == {25.0}


def _correlations(tmp_path, cli, src, key_file, epsilon):
    out_dir = tmp_path / f"eps{epsilon}"
    result = cli(["anonymize", src, "-k", key_file, "--dp-epsilon", epsilon, "--seed", "corr", "--out-dir", out_dir,
                  "-q"])
    assert result.exit_code == 0, result.stderr
    values = []
    for name in FILES:
        y, sr = sf.read(src / name)
        z, _ = sf.read(out_dir / name)
        values.append(pitch_agreement(y, z, sr=sr).correlation_without_gross)
    return np.array(values)


@pytest.mark.slow
def test_contour_follows_the_source_at_high_epsilon_and_not_at_low(calls, tmp_path, cli):
    """A fixed key and seed make the run reproducible (the correlation also depends on the drawn target)."""
    src, _, _ = calls
    key_file = tmp_path / "fixed.key"
    write_key_file(key_file, SecretKey(bytes(range(32))))
    high = _correlations(tmp_path, cli, src, key_file, "10000")
    low = _correlations(tmp_path, cli, src, key_file, "1")
    # measured with the evaluation's own pitch figures (harvest on both, correlation over the frames that are not
    # gross errors): two coefficients per second keep only the phrase-level contour, about 0.5-0.65 per file at
    # epsilon 10^4 (mean 0.58 with this key and seed), near 0 at epsilon 1
    assert high.mean() > 0.45 and (high > 0.3).all(), high
    assert abs(low.mean()) < 0.25 and high.mean() > low.mean() + 0.35, (high, low)


@pytest.mark.slow
def test_seed_is_reproducible_and_marked_not_private(calls, tmp_path, cli):
    src, _, key_file = calls
    wav = src / FILES[0]
    runs = [cli(["anonymize", wav, "-o", tmp_path / f"{i}.wav", "-k", key_file, "--dp-epsilon", "5", "--seed", seed,
                 "--emit-manifest"]) for i, seed in enumerate(("7", "7", "8"))]
    assert [r.exit_code for r in runs] == [0, 0, 0], runs[0].stderr
    assert "NOT PRIVATE" in runs[0].stderr
    data = [(tmp_path / f"{i}.wav").read_bytes() for i in range(3)]
    assert data[0] == data[1] and data[0] != data[2]
    entry = records(runs[0].stdout)[0]["privspeech"]["ops"][-1]
    assert entry["private"] is False and "NOT PRIVATE" in entry["sampler"]
    budget = cli(["budget"], input=runs[0].stdout)
    assert records(budget.stdout)[0]["not_private_ops"] == 1


@pytest.mark.slow
def test_lazy_attacker_rebuilt_from_the_manifest_releases_intonation_the_same_way(calls, tmp_path, cli):
    """`evaluate` with two manifests: the attacker's anonymizer repeats the DP release the ledger names."""
    _, manifest, key_file = calls
    run = cli(["anonymize", "-k", key_file, "--dp-epsilon", "2", "--out-dir", tmp_path / "a", "-j", "1"],
              input=manifest)
    assert run.exit_code == 0, run.stderr
    released = [Record.from_dict(r) for r in records(run.stdout)]
    anonymizer = attacks.anonymizer_from_records(released)
    described = attacks.describe(anonymizer)
    assert described["function"].endswith("_anonymize_dp") and described["epsilon"] == 2.0
    assert described["dp"] == {"segment_seconds": 1.0, "n_coeffs": 2, "clip_octaves": 0.25, "grid_bits": 7}
    y, sr = sf.read(VCTK / FILES[0])
    key = generate()
    outs = [anonymizer(y, sr=sr, key=key, speaker="p225", utterance="u") for _ in range(2)]
    assert outs[0].shape == y.shape and not np.array_equal(outs[0], outs[1])  # fresh noise per release
    plain = [Record.from_dict({**r, "privspeech": {**r["privspeech"], "ops": r["privspeech"]["ops"][:1]}})
             for r in records(run.stdout)]
    assert attacks.describe(attacks.anonymizer_from_records(plain))["function"] == "privspeech.voice.anonymize"
    with pytest.raises(PrivspeechError, match="different settings"):
        attacks.anonymizer_from_records(released[:2] + plain[2:])


@pytest.mark.parametrize("args", [["--dp-epsilon", "0"], ["--dp-epsilon", "-2"], ["--dp-epsilon", "nan"],
                                  ["--dp-epsilon", "inf"], ["--dp-epsilon", "5", "--method", "mcadams"],
                                  ["--max-epsilon", "5"], ["--seed", "1"],
                                  ["--dp-epsilon", "5", "--max-epsilon", "0"]])
def test_bad_options_exit_2_and_write_nothing(tmp_path, cli, args):
    key_file = tmp_path / "anon.key"
    write_key_file(key_file, generate())
    result = cli(["anonymize", VCTK / FILES[0], "-o", tmp_path / "x.wav", "-k", key_file, *args])
    assert result.exit_code == 2, result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "x.wav").exists()


@pytest.mark.parametrize("settings", [dict(epsilon=0), dict(epsilon=1, n_coeffs=0), dict(epsilon=1, clip_octaves=0.3),
                                      dict(epsilon=1, grid_bits=20), dict(epsilon=1, segment_seconds=0.01)])
def test_bad_library_settings(settings):
    with pytest.raises(PrivspeechError):
        DPSettings(**settings)


@pytest.mark.slow
def test_long_stereo_file_splits_one_epsilon_over_segments_and_channels():
    """34 s of stereo speech: two stream segments x two channels are four releases sharing one epsilon."""
    y = np.concatenate([sf.read(p)[0] for p in sorted((VCTK / "p227").glob("*.wav"))[:5]])[: 34 * 16000]
    stereo = np.stack([y, y[::-1]], axis=1)
    key = generate()
    out, entry = anonymize_dp(stereo, sr=16000, key=key, epsilon=30.0, speaker="p227", rng=SecureRandom("long"))
    assert out.shape == stereo.shape and np.isfinite(out).all()
    params = entry["params"]
    assert params["releases"] == 4 and entry["epsilon"] == 30.0
    # per channel: 3400 frames in 34 one-second segments, plus one partial segment where the cores meet
    assert params["planned_segments"] == 2 * (34 + 1) and params["released_segments"] <= params["planned_segments"]
    assert entry["scale"] == pytest.approx(params["planned_segments"] * 2 * 64 / 30.0)

    # block sizes do not matter: the same seed through 3-second blocks gives the same output
    stream, _ = dp_stream(settings=DPSettings(epsilon=30.0), n_samples=stereo.shape[0], sr=16000, channels=2,
                          key=key, speaker="p227", rng=SecureRandom("long"))
    blocks = [stream.process(stereo[i : i + 48000]) for i in range(0, stereo.shape[0], 48000)]
    assert np.array_equal(np.concatenate([*blocks, stream.flush()]), out)


def test_a_release_beyond_the_plan_is_refused():
    budget = IntonationBudget(DPSettings(epsilon=1.0), n_samples=16000, sr=16000, channels=1, frame_period=10.0)
    assert budget.planned == 1
    f0 = np.full(250, 120.0)  # 2.5 s of voiced frames: three segments, more than one second allows
    with pytest.raises(PrivspeechError, match="exceed the planned"):
        budget.release(f0)
    assert budget.released == 0 and budget.entry()["params"]["released_segments"] == 0


def test_silence_and_tiny_inputs_release_nothing_and_keep_their_length():
    key = generate()
    for n in (0, 1, 160, 16000):
        out, entry = anonymize_dp(np.zeros(n), sr=16000, key=key, epsilon=1.0, speaker="s")
        assert out.shape == (n,) and not out.any()
        assert entry["params"]["released_segments"] == 0 and entry["epsilon"] == 1.0
