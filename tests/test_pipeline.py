"""The pipeline runner with real audio stages: order, parallelism, resume, failures, placement, interrupts."""

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from privspeech import executors
from privspeech.fsutil import sha256_file
from privspeech.cli import run as runs
from privspeech.cli.options import RunOptions
from privspeech.console import Env
from privspeech.errors import ExitStatus, PrivspeechError
from privspeech.inputs import collect
from privspeech.stages import WAV, Stage

import stages
from conftest import TESTS, VCTK, foreground_sigint, no_temp_files, records


def run(stage, paths, capsys, **kwargs):
    """Run a stage through the CLI layer's entry point; returns (status, records, stderr)."""
    env = Env()
    status = runs.run(stage, env, RunOptions(**kwargs), collect([str(p) for p in paths], env))
    out, err = capsys.readouterr()
    return status, records(out), err


GAIN = Stage("gain", stages.gain, stages.Gain(0.5), naming=WAV)


@pytest.mark.slow
def test_parallel_run_keeps_input_order_and_mirrors_layout(tmp_path, capsys):
    out = tmp_path / "out"
    stage = Stage("gain", stages.pid_gain, stages.Gain(), naming=WAV)
    status, got, err = run(stage, [VCTK], capsys, out_dir=out, jobs=2)
    assert status == 0, err
    inputs = sorted(VCTK.rglob("*.wav"))
    assert [r["id"] for r in got] == [f"{p.parent.name}/{p.stem}" for p in inputs]
    assert len({r["pid"] for r in got}) == 2 and os.getpid() not in {r["pid"] for r in got}
    for rec, src in zip(got, inputs):
        dest = out / src.parent.name / src.name
        assert Path(rec["audio_filepath"]) == dest
        assert rec["privspeech"]["sha256"] == sha256_file(dest)
        assert rec["privspeech"]["ops"][-1]["op"] == "gain"
        assert np.allclose(sf.read(dest)[0], sf.read(src)[0] * 0.5, atol=1 / 32768)
    assert (out / ".privspeech" / "root.json").is_file()
    assert "gain: 40 done" in err and no_temp_files(out)


def test_rerun_resumes_and_changed_settings_do_not(tmp_path, capsys):
    out = tmp_path / "out"
    first = run(GAIN, [VCTK / "p225"], capsys, out_dir=out, jobs=1)
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*.wav")}
    second = run(GAIN, [VCTK / "p225"], capsys, out_dir=out, jobs=2)
    assert second[0] == 0 and "10 already done (resumed)" in second[2]
    assert second[1] == first[1]
    assert mtimes == {p: p.stat().st_mtime_ns for p in out.rglob("*.wav")}
    louder = Stage("gain", stages.gain, stages.Gain(0.25), naming=WAV)
    status, got, err = run(louder, [VCTK / "p225"], capsys, out_dir=out, jobs=1)
    assert status == 1 and got == [] and err.count("output already exists") == 10
    status, got, err = run(louder, [VCTK / "p225"], capsys, out_dir=out, jobs=1, force=True)
    assert status == 0 and len(got) == 10 and all(r["privspeech"]["ops"][-1]["factor"] == 0.25 for r in got)


def test_an_output_replaced_by_hand_is_not_mistaken_for_done(tmp_path, capsys):
    out = tmp_path / "out"
    run(GAIN, [VCTK / "p225"], capsys, out_dir=out, jobs=1)
    victim = out / "p225_003.wav"
    victim.write_bytes(b"tampered")
    status, got, err = run(GAIN, [VCTK / "p225"], capsys, out_dir=out, jobs=1)
    assert status == 1 and len(got) == 9 and "p225_003.wav: output already exists" in err


def test_failures_are_reported_and_the_batch_goes_on(tmp_path, capsys):
    stage = Stage("gain", stages.fail_on_speaker, stages.Gain(), naming=WAV)
    status, got, err = run(stage, [VCTK / "p225", VCTK / "p226", VCTK / "p227"], capsys, out_dir=tmp_path, jobs=2)
    assert status == ExitStatus.FAILED
    assert len(got) == 20 and not any(r["id"].startswith("p226") for r in got)
    errors = [line for line in err.splitlines() if "error" in line]
    assert len(errors) == 10 and all("p226" in line and "internal error" in line for line in errors)
    assert "Traceback" not in err


def test_thread_stages_keep_input_order_across_batches_resumed_records_and_failures(tmp_path, capsys):
    out = tmp_path / "out"

    def threaded(failing):
        return Stage("gain", stages.fail_on_speaker, stages.Gain(0.5, speaker=failing), naming=WAV, io_bound=True)

    assert len(run(threaded(("p225", "p226", "p228")), [VCTK], capsys, out_dir=out, jobs=2)[1]) == 10
    status, got, err = run(threaded("p225"), [VCTK], capsys, out_dir=out, jobs=2)
    assert status == ExitStatus.FAILED
    want = [f"{p.parent.name}/{p.stem}" for p in sorted(VCTK.rglob("*.wav")) if p.parent.name != "p225"]
    assert [r["id"] for r in got] == want
    assert err.count("internal error") == 10 and "10 already done (resumed)" in err
    assert all(r["privspeech"]["sha256"] == sha256_file(r["audio_filepath"]) for r in got)


@pytest.mark.slow
def test_thread_stages_spread_large_files_over_the_threads(tmp_path, capsys):
    y, sr = sf.read(VCTK / "p225" / "p225_003.wav")
    reps = int(np.ceil(executors.THREAD_BATCH_BYTES / 2 / y.size)) + 1  # 16-bit samples: over the batch's bytes
    for name in ("a", "b"):
        sf.write(tmp_path / f"{name}.wav", np.tile(y, reps), sr, subtype="PCM_16")
    stage = Stage("gain", stages.thread_gain, stages.Gain(), naming=WAV, io_bound=True)
    status, got, err = run(stage, [tmp_path / "a.wav", tmp_path / "b.wav"], capsys, out_dir=tmp_path / "out",
                           jobs=2)
    assert status == 0, err
    assert [r["id"] for r in got] == ["a", "b"] and len({r["thread"] for r in got}) == 2


def test_fail_fast_stops_early(tmp_path, capsys):
    stage = Stage("gain", stages.fail_on_speaker, stages.Gain(), naming=WAV)
    status, got, err = run(stage, [VCTK / "p226", VCTK / "p227"], capsys, out_dir=tmp_path, jobs=1, fail_fast=True)
    assert status == 1 and got == [] and err.count("internal error") == 1


def test_changed_input_is_refused(tmp_path, capsys):
    src = tmp_path / "a.wav"
    src.write_bytes((VCTK / "p225" / "p225_003.wav").read_bytes())
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"audio_filepath": "a.wav", "privspeech": {"sha256": "0" * 64}}) + "\n")
    status, got, err = run(GAIN, [manifest], capsys, out_dir=tmp_path / "out", jobs=1)
    assert status == 1 and "sha256 mismatch" in err


def test_shards_partition_the_input(tmp_path, capsys):
    ids = []
    for i in (1, 2, 3):
        status, got, _ = run(GAIN, [VCTK / "p225"], capsys, out_dir=tmp_path / "o", jobs=1, shard=f"{i}/3")
        ids += [r["id"] for r in got]
    assert sorted(ids) == sorted(p.stem for p in (VCTK / "p225").glob("*.wav"))


def test_single_file_mode(tmp_path, capsys):
    dest = tmp_path / "one.wav"
    status, got, err = run(GAIN, [VCTK / "p225" / "p225_003.wav"], capsys, output=str(dest))
    assert status == 0 and got == [] and dest.is_file()
    with pytest.raises(PrivspeechError) as info:
        run(GAIN, [VCTK / "p225"], capsys, output=str(tmp_path / "x.wav"))
    assert info.value.status == ExitStatus.USAGE
    status, _, err = run(GAIN, [VCTK / "p225" / "p225_003.wav"], capsys, output=str(dest))
    assert status == ExitStatus.CANTCREAT and "already exists" in err
    status, got, _ = run(GAIN, [VCTK / "p225" / "p225_003.wav"], capsys, output=str(dest), force=True,
                         emit_manifest=True)
    assert status == 0 and Path(got[0]["audio_filepath"]) == dest


def test_tasks_know_whether_their_record_is_kept(tmp_path, capsys):
    """Only single-file mode without --emit-manifest drops the record, so only there may a stage skip its sha256."""
    seen = []

    def work(task, settings):
        seen.append(task.record_kept)
        return stages.gain(task, settings)

    wav = VCTK / "p225" / "p225_003.wav"
    stage = Stage("gain", work, stages.Gain(), naming=WAV)
    for kwargs in ({"output": str(tmp_path / "a.wav")}, {"output": str(tmp_path / "b.wav"), "emit_manifest": True},
                   {"out_dir": tmp_path / "out"}):
        assert run(stage, [wav], capsys, jobs=1, **kwargs)[0] == 0
    assert seen == [False, True, True]


def test_placement_errors(tmp_path, capsys):
    wav = VCTK / "p225" / "p225_003.wav"
    for kwargs in ({}, {"out_dir": tmp_path, "output": "x.wav"}, {"output": "-", "emit_manifest": True}):
        with pytest.raises(PrivspeechError) as info:
            run(GAIN, [wav], capsys, **kwargs)
        assert info.value.status == ExitStatus.USAGE
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(PrivspeechError) as info:
        run(GAIN, [wav], capsys, out_dir=blocker)
    assert info.value.status == ExitStatus.CANTCREAT


SCRIPT = """
import functools, sys
sys.path.insert(0, {tests!r})
import stages
from privspeech.cli import run as runs
from privspeech.cli.command import command
from privspeech.cli.options import RunOptions
from privspeech.inputs import collect
from privspeech.stages import WAV, Stage

@command
def main(env):
    stage = Stage("gain", stages.slow_gain, stages.Gain(pause={pause}), naming=WAV, io_bound={threads})
    return runs.run(stage, env, RunOptions(out_dir=sys.argv[1], jobs={jobs}), collect(sys.argv[2:], env))

try:
    main(quiet=True)
except typer.Exit as exc:
    sys.exit(exc.exit_code)
"""


@pytest.mark.parametrize("jobs", [1, 2])
def test_ctrl_c_exits_130_and_leaves_no_temporary_or_partial_files(tmp_path, jobs):
    mark = tmp_path / "writing"
    out = tmp_path / "out"
    code = SCRIPT.format(tests=str(TESTS), pause=30, jobs=jobs, threads=False)
    wrapper = f"import typer\n{code}"
    proc = subprocess.Popen([sys.executable, "-c", wrapper, str(out), str(VCTK / "p225")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                            preexec_fn=foreground_sigint, env={**os.environ, "PRIVSPEECH_TEST_MARK": str(mark)})
    deadline = time.time() + 60
    while not mark.exists() and time.time() < deadline:
        time.sleep(0.05)
    assert mark.exists(), proc.stderr.read() if proc.poll() is not None else "no write started"
    assert any(p.name.endswith(".privspeech-tmp") for p in out.rglob("*"))
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert b"interrupted" in err and b"Traceback" not in err
    assert no_temp_files(out)
    assert not list(out.rglob("*.wav"))


@pytest.mark.slow
def test_ctrl_c_in_a_thread_stage_finishes_the_records_being_written_and_starts_no_more(tmp_path):
    """Threads cannot be interrupted: each completes its current record (atomically); the rest of its batch
    is not started."""
    mark, out = tmp_path / "writing", tmp_path / "out"
    code = "import typer\n" + SCRIPT.format(tests=str(TESTS), pause=1, jobs=2, threads=True)
    proc = subprocess.Popen([sys.executable, "-c", code, str(out), str(VCTK / "p225")], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True, preexec_fn=foreground_sigint,
                            env={**os.environ, "PRIVSPEECH_TEST_MARK": str(mark)})
    deadline = time.time() + 60
    while not mark.exists() and time.time() < deadline:
        time.sleep(0.05)
    assert mark.exists(), proc.stderr.read() if proc.poll() is not None else "no write started"
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert b"Traceback" not in err and no_temp_files(out)
    assert 1 <= len(list(out.rglob("*.wav"))) <= 2  # one per thread at most, of the 10 queued


@pytest.mark.slow
@pytest.mark.parametrize("stage_args", [["noise", "--epsilon", "50", "-j", "2"], ["encrypt", "-p", "--jobs", "2"]],
                         ids=["processes", "threads"])
def test_a_finished_record_is_handed_on_while_the_next_input_is_still_to_come(stage_args, tmp_path):
    """In a pipeline the upstream stage may take long per record: the first record's output line must come out as
    soon as it is done, not once a window of further inputs has arrived."""
    scanned = subprocess.run([sys.executable, "-m", "privspeech", "scan", VCTK / "p225" / "p225_003.wav"],
                             capture_output=True, check=True).stdout
    (tmp_path / "pass").write_text("a passphrase\n")
    extra = ["--passphrase-file", tmp_path / "pass"] if "encrypt" in stage_args else []
    proc = subprocess.Popen([sys.executable, "-m", "privspeech", *stage_args, *map(str, extra), "--out-dir",
                             str(tmp_path / "out"), "-q"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        proc.stdin.write(scanned)
        proc.stdin.flush()  # and keep stdin open: the next record has not come yet
        ready, _, _ = select.select([proc.stdout], [], [], 60)
        assert ready, "no output while waiting for the next input"
        (first,) = records(proc.stdout.readline().decode())
        assert first["id"] == "p225_003" and (tmp_path / "out" / Path(first["audio_filepath"]).name).exists()
        assert proc.poll() is None  # still waiting for input
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=60)
        finally:
            proc.kill()
    assert proc.returncode == 0, proc.stderr.read()
