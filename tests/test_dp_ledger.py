"""The privacy ledger: record ops and the dataset ledger file round trip; composition per unit, per source
recording (sequential, each release once) and per speaker (parallel across recordings for record-level units,
sequential for unit speaker); refusal over budget."""

from __future__ import annotations

import multiprocessing

import pytest
import soundfile as sf

from conftest import SAMPLES, no_temp_files
from privspeech.managed import is_marked
from privspeech.dp import ledger
from privspeech.dp.accounting import Cost, Ledger, compose, cost_of, record_releases, releases
from privspeech.dp.audio_noise import add_noise
from privspeech.dp.calibration import zcdp_epsilon
from privspeech.dp.rng import SecureRandom
from privspeech.errors import ExitStatus, PrivspeechError
from privspeech.manifest import Record, dumps, read_jsonl

FILES = sorted(p for p in SAMPLES.rglob("*") if p.suffix in (".wav", ".flac") and sf.info(p).samplerate == 16000)


def noised_records(tmp_path, epsilons) -> list[Record]:
    """Real sample speech noised with real entries, written and read back as a manifest."""
    out = []
    for path, eps in zip(FILES, epsilons):
        y, sr = sf.read(path, dtype="int16")
        result = add_noise(y[:4000], epsilon=eps, unit="window:160", rng=SecureRandom(str(path)))
        record = Record(audio_filepath=str(path), duration=len(y) / sr, speaker=path.parent.name, id=path.stem)
        out.append(record.with_op("noise", **result.entry))
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(dumps(r, tmp_path) for r in out))
    with manifest.open() as fh:
        return list(read_jsonl(fh, base_dir=tmp_path))


def entry(epsilon=None, unit="utterance", **fields) -> dict:
    """A DP ops entry as the stages write them (each with its own release_id unless given)."""
    import secrets

    fields.setdefault("release_id", secrets.token_hex(8))
    return {"op": "noise", "mechanism": "discrete-laplace", "epsilon": epsilon, "delta": 0.0, "unit": unit, **fields}


def rec(source_id, speaker=None, *ops, hmac=None, key="k1", source_speaker=None) -> Record:
    source = {"id": source_id}
    if hmac:
        source.update(hmac=hmac, key=key)
    if source_speaker:
        source["speaker"] = source_speaker
    record = Record(audio_filepath=f"/data/{source_id}.wav", id=source_id, speaker=speaker)
    record.privspeech.source = source
    record.privspeech.ops = list(ops)
    return record


def rows(records, dataset=()) -> dict[tuple[str, str | None], dict]:
    return {(row.who, row.unit): row.to_dict(delta=1e-6) for row in Ledger(records, dataset).rows()}


def test_record_ledger_round_trip_and_composition(tmp_path):
    records = noised_records(tmp_path, [2.0, 3.0, 0.5, 1.5])
    assert [compose(record_releases(r)) for r in records] == [{"window:160": Cost(epsilon=e)} for e in
                                                               (2.0, 3.0, 0.5, 1.5)]
    again = {k: v for k, v in records[1].privspeech.ops[-1].items() if k not in ("op", "release_id")}
    twice = records[0].with_op("noise", **again)
    gauss = twice.with_op("noise", mechanism="discrete-gaussian", rho=0.25, epsilon=3.1, delta=1e-6, unit="sample")
    assert compose(record_releases(gauss)) == {"window:160": Cost(epsilon=5.0), "sample": Cost(rho=0.25)}
    assert compose(record_releases(gauss))["sample"].approx(1e-6) == (pytest.approx(zcdp_epsilon(0.25, 1e-6)), 1e-6)
    assert record_releases(gauss.with_op("encrypt", format="age")) == record_releases(gauss)  # not a DP op


def test_units_are_never_added():
    spk = [rec("a", "p1", entry(6.0, "window:160"), entry(5.0, "utterance"), entry(rho=0.5, unit="sample"))]
    got = rows(spk, [entry(1.0, "speaker", op="stats")])
    assert {unit for _, unit in got} == {"window:160", "utterance", "sample", "speaker"}
    assert got[("p1", "window:160")]["epsilon"] == 6.0 and got[("p1", "utterance")]["epsilon"] == 5.0
    assert got[("p1", "sample")]["pure_epsilon"] == 0.0 and got[("p1", "sample")]["rho"] == 0.5
    assert got[("p1", "speaker")]["epsilon"] == 1.0 and "dataset ledger" in got[("p1", "speaker")]["composition"]


def test_one_recording_adds_up_and_recordings_count_by_the_largest():
    first, second = entry(5.0), entry(5.0)
    records = [rec("p1/a", "spk-run1", first), rec("p1/a", "spk-run2", second),  # two runs on one recording
               rec("p1/b", "spk-run1", entry(3.0)), rec("p1/c", "spk-run3", entry(rho=1.0))]
    got = rows(records)
    assert list(got) == [("spk-run1 = spk-run2", "utterance"), ("spk-run3", "utterance")]  # run2 shares p1/a
    row = got[("spk-run1 = spk-run2", "utterance")]
    assert row["epsilon"] == 10.0 and row["recordings"] == 2 and row["records"] == 3 and row["releases"] == 3
    assert row["composition"] == "largest over 2 recording(s) of the sum within each"
    assert got[("spk-run3", "utterance")]["rho"] == 1.0


def test_parallel_bound_takes_each_part_at_its_largest():
    records = [rec("a", "p", entry(4.0)), rec("b", "p", entry(rho=0.5)),
               rec("c", "p", {**entry(1.0), "delta": 1e-7, "mechanism": "x"})]
    total = Ledger(records).rows()[0].cost
    assert total == Cost(epsilon=4.0, rho=0.5, delta=1e-7)


def test_a_release_carried_by_derived_records_counts_once():
    ancestor = entry(2.0, "window:160")
    records = [rec("a", "p", ancestor, entry(1.0, "window:160")), rec("a", "p", ancestor, entry(1.0, "window:160"))]
    assert rows(records)[("p", "window:160")]["epsilon"] == 4.0
    legacy = {k: v for k, v in ancestor.items() if k != "release_id"}  # entries written before release ids
    assert rows([rec("a", "p", legacy), rec("a", "p", dict(legacy))])[("p", "window:160")]["epsilon"] == 2.0


def test_source_recordings_are_known_by_keyed_hmac_then_by_id():
    # the same id, HMACs under one key that differ: two files (e.g. two folders scanned apart): parallel
    apart = [rec("0001", "p", entry(5.0), hmac="aa"), rec("0001", "p", entry(5.0), hmac="bb")]
    assert rows(apart)[("p", "utterance")]["epsilon"] == 5.0
    # one HMAC under different ids (a copy renamed): one recording
    copies = [rec("x/0001", "p", entry(5.0), hmac="aa"), rec("y/copy", "q", entry(5.0), hmac="aa")]
    assert rows(copies)[("p = q", "utterance")]["epsilon"] == 10.0
    # one record without an HMAC, or HMACs under two keys: the id cannot be told apart, so it decides
    for other in (rec("0001", "p", entry(5.0)), rec("0001", "p", entry(5.0), hmac="cc", key="k2")):
        assert rows([apart[0], other])[("p", "utterance")]["epsilon"] == 10.0


def test_the_keyed_source_speaker_names_the_row():
    records = [rec("a", "spk-1", entry(2.0), source_speaker="src-9"), rec("b", "spk-2", entry(3.0),
                                                                         source_speaker="src-9")]
    assert list(rows(records)) == [("src-9", "utterance")]
    nobody = rows([rec("z", None, entry(1.0))])
    assert list(nobody) == [("(recording z)", "utterance")]
    none = rows([rec("n", "p")])
    assert none[("p", None)]["epsilon"] == 0 and none[("p", None)]["composition"] == "no DP release"


def test_run_refusal_names_speaker_unit_and_figures():
    records = [rec("a", "p225", entry(6.0, "window:160")), rec("b", "p225", entry(7.0, "utterance"))]
    book = Ledger(records)
    book.check_run(entry(2.0, "window:160"), max_epsilon=8.0, delta=1e-6, hint="h")  # 6 + 2 on a; b has none
    with pytest.raises(PrivspeechError) as err:
        book.check_run(entry(2.5, "window:160"), max_epsilon=8.0, delta=1e-6, hint="lower it")
    message = err.value.message
    assert err.value.status == ExitStatus.DATAERR and err.value.hint == "lower it"
    assert "speaker p225, unit window:160" in message and "spent epsilon 6" in message and "8.5" in message
    with pytest.raises(PrivspeechError, match="unit utterance: .* spent epsilon 7, .* bring it to 9"):
        book.check_run(entry(2.0, "utterance"), max_epsilon=8.0, delta=1e-6, hint="h")
    with pytest.raises(PrivspeechError, match="unit speaker: .* spent epsilon 1, .* bring it to 2.5"):
        Ledger(records, [entry(1.0, "speaker")]).check_run(entry(1.5, "speaker"), max_epsilon=2.0, delta=1e-6,
                                                           hint="h")
    with pytest.raises(PrivspeechError) as err:
        book.check_run(entry(1.0), max_epsilon=0, delta=1e-6, hint="h")
    assert err.value.status == ExitStatus.USAGE


def test_a_run_charges_each_recording_once_per_record():
    """Two records of one recording in a run: it is released twice, so it is charged twice."""
    records = [rec("a", "p", entry(3.0)), rec("a", "p"), rec("b", "p", entry(3.0))]
    Ledger(records).check_run(entry(2.0), max_epsilon=7.0, delta=1e-6, hint="h")  # a: 3 + 2 x 2 = 7
    with pytest.raises(PrivspeechError, match=r"\(3 record\(s\) in this run\) would bring it to 7.5"):
        Ledger(records).check_run(entry(2.25), max_epsilon=7.0, delta=1e-6, hint="h")


@pytest.mark.parametrize("bad", [
    {"op": "noise", "mechanism": "discrete-laplace", "unit": "sample"},
    {"op": "noise", "mechanism": "discrete-laplace", "epsilon": -1, "unit": "sample"},
    {"op": "noise", "mechanism": "discrete-laplace", "epsilon": "2", "unit": "sample"},
    {"op": "noise", "mechanism": "discrete-gaussian", "rho": float("nan"), "unit": "sample"},
    {"op": "noise", "mechanism": "discrete-laplace", "epsilon": 1.0},
], ids=["no-epsilon", "negative", "text", "nan-rho", "no-unit"])
def test_bad_dp_entries_are_refused_not_free(bad):
    with pytest.raises(PrivspeechError) as err:
        releases([bad])
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
    assert compose(releases(entries)) == {"speaker": Cost(epsilon=0.75)}
    assert no_temp_files(root) and not is_marked(root)  # a ledger does not make the folder prunable


def _append_many(root: str, tag: int) -> None:
    for i in range(20):
        ledger.append(root, "stats", mechanism="discrete-laplace", epsilon=0.01, delta=0.0, who=f"{tag}-{i}")


@pytest.mark.slow
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


def test_hostile_source_fields_are_ignored_not_a_traceback():
    record = rec("a", "p", entry(1.0))
    record.privspeech.source = {"id": ["x"], "hmac": {"not": "text"}, "key": [1], "speaker": 7}
    assert rows([record, rec("a", "p", entry(2.0))])[("p", "utterance")]["epsilon"] == 3.0  # known by record id
