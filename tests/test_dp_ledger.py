"""The privacy ledger: record ops and the dataset ledger file round trip, compose per speaker, refuse over budget."""

from __future__ import annotations

import multiprocessing

import pytest
import soundfile as sf

from conftest import corpus_files, no_temp_files
from privspeech.dataset import is_marked
from privspeech.dp import ledger
from privspeech.dp.accounting import Cost, check_budget, check_speakers, compose, cost_of, per_speaker, record_cost
from privspeech.dp.audio_noise import add_noise
from privspeech.dp.calibration import zcdp_epsilon
from privspeech.dp.rng import SecureRandom
from privspeech.errors import ExitStatus, PrivspeechError
from privspeech.manifest import Record, dumps, read_jsonl


def noised_records(tmp_path, epsilons) -> list[Record]:
    """Real corpus files noised with real entries, written and read back as a manifest."""
    out = []
    for path, eps in zip(corpus_files("vctk")[::10], epsilons):
        y, sr = sf.read(path, dtype="int16")
        result = add_noise(y[:4000], epsilon=eps, unit="window:160", rng=SecureRandom(str(path)))
        record = Record(audio_filepath=str(path), duration=len(y) / sr, speaker=path.parent.name, id=path.stem)
        out.append(record.with_op("noise", **result.entry))
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(dumps(r, tmp_path) for r in out))
    with manifest.open() as fh:
        return list(read_jsonl(fh, base_dir=tmp_path))


def test_record_ledger_round_trip_and_composition(tmp_path):
    records = noised_records(tmp_path, [2.0, 3.0, 0.5, 1.5])
    assert [record_cost(r) for r in records] == [Cost(epsilon=e) for e in (2.0, 3.0, 0.5, 1.5)]
    again = {k: v for k, v in records[1].privspeech.ops[-1].items() if k != "op"}
    twice = records[0].with_op("noise", **again)
    gauss = twice.with_op("noise", mechanism="discrete-gaussian", rho=0.25, epsilon=3.1, delta=1e-6)
    assert record_cost(gauss) == Cost(epsilon=5.0, rho=0.25)
    assert record_cost(gauss).approx(1e-6) == (pytest.approx(5.0 + zcdp_epsilon(0.25, 1e-6)), 1e-6)
    assert record_cost(gauss.with_op("encrypt", format="age")) == record_cost(gauss)  # not a DP op


def test_per_speaker_adds_records_and_dataset_entries(tmp_path):
    records = noised_records(tmp_path, [1.0, 1.0, 1.0, 1.0])
    extra = records[0].with_op("noise", mechanism="discrete-laplace", epsilon=2.5, delta=0.0)
    dataset = [{"op": "stats", "mechanism": "discrete-laplace", "epsilon": 0.5, "delta": 0.0, "unit": "speaker"}]
    totals = per_speaker([extra, *records[1:]], dataset)
    assert totals[records[0].speaker] == Cost(epsilon=4.0)
    assert {totals[r.speaker] for r in records[1:]} == {Cost(epsilon=1.5)}
    anonymous = Record(audio_filepath="/x.wav", id="x")
    assert per_speaker([anonymous]) == {"(record x)": Cost()}


def test_budget_refusal_names_the_figures():
    check_budget(Cost(epsilon=6.0), Cost(epsilon=2.0), max_epsilon=8.0, delta=1e-6, who="speaker p225")
    with pytest.raises(PrivspeechError) as err:
        check_budget(Cost(epsilon=6.0), Cost(epsilon=2.5), max_epsilon=8.0, delta=1e-6, who="speaker p225")
    assert err.value.status == ExitStatus.DATAERR
    assert "p225" in err.value.message and "6" in err.value.message and "8.5" in err.value.message
    spent = {"a": Cost(epsilon=1.0), "b": Cost(epsilon=0.5, rho=1.0)}
    with pytest.raises(PrivspeechError) as err:
        check_speakers(spent, Cost(rho=0.5), max_epsilon=8.0, delta=1e-6)
    assert "speaker b" in err.value.message
    with pytest.raises(PrivspeechError) as err:
        check_budget(Cost(), Cost(), max_epsilon=0, delta=1e-6, who="x")
    assert err.value.status == ExitStatus.USAGE


@pytest.mark.parametrize("entry", [
    {"op": "noise", "mechanism": "discrete-laplace"},
    {"op": "noise", "mechanism": "discrete-laplace", "epsilon": -1},
    {"op": "noise", "mechanism": "discrete-laplace", "epsilon": "2"},
    {"op": "noise", "mechanism": "discrete-gaussian", "rho": float("nan")},
])
def test_bad_dp_entries_are_refused_not_free(entry):
    with pytest.raises(PrivspeechError) as err:
        compose([entry])
    assert err.value.status == ExitStatus.DATAERR


def test_non_dp_entries_cost_nothing():
    assert cost_of({"op": "anonymize", "method": "world"}) is None


def test_dataset_ledger_file_round_trip(tmp_path):
    root = tmp_path / "data"
    with pytest.raises(PrivspeechError) as err:
        ledger.append(root, "stats", mechanism="discrete-laplace", epsilon=0.5)
    assert err.value.status == ExitStatus.NOINPUT
    root.mkdir()
    assert ledger.read(root) == []
    first = ledger.append(root, "stats", mechanism="discrete-laplace", epsilon=0.5, delta=0.0, unit="speaker")
    ledger.append(root, "stats", mechanism="discrete-laplace", epsilon=0.25, delta=0.0, unit="speaker")
    entries = ledger.read(root)
    assert entries[0] == first and len(entries) == 2 and "at" in first and "version" in first
    assert compose(entries) == Cost(epsilon=0.75)
    assert no_temp_files(root) and not is_marked(root)  # a ledger does not make the folder prunable


def _append_many(root: str, tag: int) -> None:
    for i in range(20):
        ledger.append(root, "stats", mechanism="discrete-laplace", epsilon=0.01, delta=0.0, who=f"{tag}-{i}")


def test_concurrent_appends_lose_nothing(tmp_path):
    root = tmp_path
    ledger.append(root, "stats", mechanism="discrete-laplace", epsilon=0.01, delta=0.0)
    procs = [multiprocessing.get_context("spawn").Process(target=_append_many, args=(str(root), t)) for t in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    entries = ledger.read(root)
    assert len(entries) == 61 and len({e.get("who") for e in entries[1:]}) == 60


def test_corrupt_ledger_is_a_data_error(tmp_path):
    ledger.append(tmp_path, "stats", mechanism="discrete-laplace", epsilon=0.5)
    with ledger.ledger_path(tmp_path).open("a") as fh:
        fh.write("{not json\n")
    with pytest.raises(PrivspeechError) as err:
        ledger.read(tmp_path)
    assert err.value.status == ExitStatus.DATAERR and ":2:" in err.value.message
