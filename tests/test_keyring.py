"""Epoch keyrings through the real CLI and the real `age` binary: records land in the epoch of their expiry, a
recipients view encrypts and never decrypts, destroyed keys make every copy unreadable, and bad input is refused."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import VCTK, records, run_cli

pytestmark = pytest.mark.slow  # every test runs the CLI in several subprocesses

UTC = dt.timezone.utc
SOURCES = sorted((VCTK / "p225").glob("*.wav"))[:3]


def month_start(months_ahead: int) -> dt.datetime:
    today = dt.datetime.now(UTC)
    index = today.year * 12 + today.month - 1 + months_ahead
    return dt.datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def ts(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def ok(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, proc.stderr.decode()
    return proc


@pytest.fixture
def keyring(tmp_path) -> Path:
    keys = tmp_path / "keys"
    ok(run_cli(["keyring", "init", keys, "--period", "1mo", "--until", "5mo"]))
    return keys


@pytest.fixture
def manifest(tmp_path) -> Path:
    """Three recordings expiring in three different months (the 10th of months 1, 2 and 3 from now)."""
    src = tmp_path / "src"
    src.mkdir()
    for path in SOURCES:
        shutil.copy(path, src / path.name)
    scanned = records(ok(run_cli(["scan", src, "--retain", "1d"])).stdout.decode())
    for months, record in enumerate(scanned, 1):
        record["privspeech"]["expires_at"] = ts(month_start(months) + dt.timedelta(days=9))
    out = tmp_path / "m.jsonl"
    out.write_text("".join(json.dumps(r) + "\n" for r in scanned))
    return out


def epochs_of(lines: list[dict]) -> list[str]:
    return [r["privspeech"]["ops"][-1]["keyring"]["epoch"] for r in lines]


def test_records_land_in_the_epoch_of_their_expiry_and_decrypt_back(tmp_path, keyring, manifest):
    sealed = records(ok(run_cli(["encrypt", "--keyring", keyring / "recipients", manifest, "--out-dir",
                                 tmp_path / "vault"])).stdout.decode())
    assert epochs_of(sealed) == [month_start(m).strftime("%Y-%m-%d") for m in (1, 2, 3)]
    op = sealed[0]["privspeech"]["ops"][-1]
    assert op["recipients"] == 1 and "extra_recipients" not in op and "AGE-SECRET" not in json.dumps(sealed)
    (tmp_path / "vault.jsonl").write_text("".join(json.dumps(r) + "\n" for r in sealed))
    listed = [json.loads(line) for line in ok(run_cli(["keyring", "list", keyring, tmp_path / "vault.jsonl"]))
              .stdout.decode().splitlines()]
    assert [(e["state"], e["records"]) for e in listed] == [("active", 0)] + [("active", 1)] * 3 + [("active", 0)] * 2
    plain = records(ok(run_cli(["decrypt", "--keyring", keyring, tmp_path / "vault.jsonl", "--out-dir",
                                tmp_path / "plain"])).stdout.decode())
    for record, source in zip(plain, SOURCES):
        assert Path(record["audio_filepath"]).read_bytes() == source.read_bytes()
    for record, epoch in zip(sealed, epochs_of(sealed)):  # the age CLI opens each with its epoch's identity file
        opened = subprocess.run(["age", "-d", "-i", keyring / "identities" / f"{epoch}.key", record["audio_filepath"]],
                                capture_output=True)
        assert opened.returncode == 0 and opened.stdout == Path(SOURCES[sealed.index(record)]).read_bytes()


def test_a_recipients_view_encrypts_and_cannot_decrypt(tmp_path, keyring, manifest):
    view = tmp_path / "ingest"
    shutil.copytree(keyring / "recipients", view)
    assert not list(view.rglob("*.key"))
    sealed = records(ok(run_cli(["encrypt", "--keyring", view, manifest, "--out-dir", tmp_path / "vault"]))
                     .stdout.decode())
    assert len(sealed) == 3
    vault_manifest = tmp_path / "vault.jsonl"
    vault_manifest.write_text("".join(json.dumps(r) + "\n" for r in sealed))
    refused = run_cli(["decrypt", "--keyring", view, vault_manifest, "--out-dir", tmp_path / "plain"])
    assert refused.returncode == 77 and b"recipients view holds no keys" in refused.stderr
    assert not (tmp_path / "plain").exists()
    far = run_cli(["encrypt", "--keyring", view, SOURCES[0], "-o", tmp_path / "far.age", "--keyring-default-epoch",
                   month_start(9).strftime("%Y-%m-%d")])
    assert far.returncode == 66 and b"no key for epoch" in far.stderr and b"keyring extend" in far.stderr
    assert not (tmp_path / "far.age").exists()


def test_an_escrow_recipient_is_named_and_opens_the_file_alone(tmp_path, keyring, manifest):
    escrow = tmp_path / "escrow.key"
    recipient = ok(run_cli(["keygen", "-o", escrow])).stdout.decode().strip()
    sealed = records(ok(run_cli(["encrypt", "--keyring", keyring, "-r", recipient, manifest, "--out-dir",
                                 tmp_path / "vault"])).stdout.decode())
    op = sealed[0]["privspeech"]["ops"][-1]
    assert op["extra_recipients"] == [recipient] and op["recipients"] == 2
    opened = ok(run_cli(["decrypt", "-i", escrow, sealed[0]["audio_filepath"], "-o", tmp_path / "back.wav"]))
    assert (tmp_path / "back.wav").read_bytes() == SOURCES[0].read_bytes() and opened.returncode == 0


def test_a_passphrase_protected_keyring(tmp_path, manifest):
    secret = tmp_path / "pass.txt"
    secret.write_text("correct horse battery staple\n")
    secret.chmod(0o600)
    keys = tmp_path / "keys"
    ok(run_cli(["keyring", "init", keys, "--period", "1mo", "-p", "--passphrase-file", secret, "--until", "4mo"]))
    assert all(p.read_bytes().startswith(b"-----BEGIN AGE ENCRYPTED FILE-----")
               for p in (keys / "identities").glob("*.key"))
    sealed = tmp_path / "one.age"
    ok(run_cli(["encrypt", "--keyring", keys, manifest, "--out-dir", tmp_path / "vault"]))
    vault = sorted((tmp_path / "vault").glob("*.age"))
    shutil.copy(vault[0], sealed)
    locked = run_cli(["decrypt", "--keyring", keys, sealed, "-o", tmp_path / "x.wav"])
    assert locked.returncode == 2 and b"no terminal to ask for the passphrase" in locked.stderr  # never from stdin
    assert not (tmp_path / "x.wav").exists()
    ok(run_cli(["decrypt", "--keyring", keys, "--passphrase-file", secret, sealed, "-o", tmp_path / "x.wav"]))
    assert (tmp_path / "x.wav").read_bytes() == SOURCES[0].read_bytes()


def test_a_keyring_file_others_can_read_is_refused(tmp_path, keyring, manifest):
    sealed = records(ok(run_cli(["encrypt", "--keyring", keyring, manifest, "--out-dir", tmp_path / "vault"]))
                     .stdout.decode())
    key = keyring / "identities" / f"{epochs_of(sealed)[0]}.key"
    key.chmod(0o640)
    refused = run_cli(["decrypt", "--keyring", keyring, sealed[0]["audio_filepath"], "-o", tmp_path / "x.wav"])
    assert refused.returncode == 77 and b"group or others could read keys" in refused.stderr
    assert b"chmod go=" in refused.stderr and not (tmp_path / "x.wav").exists()
    key.chmod(0o600)
    (keyring / "identities").chmod(0o750)
    refused = run_cli(["keyring", "list", keyring])
    assert refused.returncode == 77 and b"keyring folder" in refused.stderr


@pytest.mark.parametrize("args, status, words", [
    (["keyring", "init", "{tmp}/k", "--period", "5x"], 2, b"not an epoch period"),
    (["keyring", "init", "{tmp}/k", "--period", "0mo"], 2, b"not an epoch period"),
    (["keyring", "list", "{tmp}/plain-folder"], 2, b"not a privspeech keyring"),
    (["keyring", "init", "{src}", "--period", "1mo"], 2, b"exists and is not an empty folder"),
    (["keyring", "list", "{tmp}/missing"], 66, b"no such folder"),
    (["encrypt", "--keyring", "{tmp}/plain-folder", "{src}", "-o", "{tmp}/x.age"], 2, b"not a privspeech keyring"),
    (["encrypt", "--keyring", "{keys}", "{src}", "-o", "{tmp}/x.age"], 65, b"no expires_at"),
    (["encrypt", "--keyring", "{keys}", "--keyring-default-epoch", "2026-12-05", "{src}", "-o", "{tmp}/x.age"], 2,
     b"no 1mo epoch starts on"),
    (["encrypt", "--keyring", "{keys}", "-p", "{src}", "-o", "{tmp}/x.age"], 2, b"--keyring excludes -p"),
    (["encrypt", "--keyring-default-epoch", "2027-01-01", "-r", "age1x", "{src}", "-o", "{tmp}/x.age"], 2,
     b"applies with --keyring only"),
    (["keyring", "extend", "{keys}", "--until", "soon"], 2, b"not a duration"),
])
def test_bad_input_gets_its_documented_error(tmp_path, keyring, args, status, words):
    (tmp_path / "plain-folder").mkdir()
    args = [a.format(tmp=tmp_path, src=SOURCES[0], keys=keyring) for a in args]
    proc = run_cli(args)
    assert proc.returncode == status, proc.stderr.decode()
    errors = [line for line in proc.stderr.splitlines() if line.startswith(b"privspeech: error:")]
    assert words in proc.stderr and b"Traceback" not in proc.stderr and len(errors) == 1
    assert not (tmp_path / "x.age").exists() and not (tmp_path / "k").exists()


def test_an_expired_record_is_not_encrypted(tmp_path, keyring, manifest):
    lines = [json.loads(line) for line in manifest.read_text().splitlines()]
    lines[0]["privspeech"]["expires_at"] = "2020-01-10T00:00:00Z"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in lines))
    proc = run_cli(["encrypt", "--keyring", keyring, manifest, "--out-dir", tmp_path / "vault"])
    assert proc.returncode == 1 and b"the record has expired" in proc.stderr
    assert len(records(proc.stdout.decode())) == 2 and not list((tmp_path / "vault").glob(f"{SOURCES[0].name}*"))
    assert not (keyring / "identities" / "2020-01-01.key").exists()


FAKETIME = shutil.which("faketime")


def in_the_past(args, days: int) -> subprocess.CompletedProcess:
    """`privspeech ARGS` run as if it were `days` days ago (libfaketime), to encrypt under epochs that have ended
    since."""
    import sys

    env = {**os.environ, "FAKETIME_DONT_FAKE_MONOTONIC": "1"}
    env.pop("PRIVSPEECH_DEBUG", None)
    return subprocess.run([FAKETIME, "-f", f"-{days}d", sys.executable, "-m", "privspeech", *map(str, args)],
                          capture_output=True, env=env, timeout=300)


@pytest.fixture
def vault(tmp_path, keyring):
    """Three records encrypted 150 days ago: expiring 3 and 2 months ago (their epochs have ended; the second is
    held) and next month."""
    src = tmp_path / "src"
    src.mkdir()
    for path in SOURCES:
        shutil.copy(path, src / path.name)
    scanned = records(ok(run_cli(["scan", src, "--retain", "1d"])).stdout.decode())
    for months, record in zip((-3, -2, 1), scanned):
        record["privspeech"]["expires_at"] = ts(month_start(months) + dt.timedelta(days=9))
    plain = tmp_path / "m.jsonl"
    plain.write_text("".join(json.dumps(r) + "\n" for r in scanned))
    sealed = records(ok(in_the_past(["encrypt", "--keyring", keyring, plain, "--out-dir", tmp_path / "vault"], 150))
                     .stdout.decode())
    sealed[1]["hold"] = True
    sealed[1]["privspeech"]["hold"] = True
    manifest = tmp_path / "vault" / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in sealed))
    return manifest, sealed


@pytest.mark.skipif(not FAKETIME or not shutil.which("age"), reason="needs faketime and age (apt-get install faketime "
                                                                     "age)")
def test_prune_destroys_ended_epoch_keys_and_every_copy_goes_dark(tmp_path, keyring, vault):
    manifest, sealed = vault
    ended, held, running = epochs_of(sealed)
    backup = tmp_path / "backup"
    shutil.copytree(manifest.parent, backup)  # a full copy of the vault before pruning
    key = keyring / "identities" / f"{ended}.key"
    plan = ok(run_cli(["prune", "--keyring", keyring, "--manifest", manifest, "--dry-run"]))
    lines = [json.loads(line) for line in plan.stdout.decode().splitlines()]
    assert [(a["action"], a["reason"]["epoch"], a["reason"]["rule"]) for a in lines] == [
        ("would-destroy", ended, "epoch-ended"), ("kept", held, "hold")]
    assert lines[1]["reason"]["records"] == [sealed[1]["id"]] and key.exists()
    later = ts(month_start(2) + dt.timedelta(days=1))
    refused = run_cli(["prune", "--keyring", keyring, "--manifest", manifest, "--now", later])
    assert refused.returncode == 2 and b"in the future" in refused.stderr and key.exists()
    planned = ok(run_cli(["prune", "--keyring", keyring, "--manifest", manifest, "--now", later, "--dry-run"]))
    on_that_date = {a["reason"]["epoch"]: a["action"] for a in map(json.loads, planned.stdout.decode().splitlines())}
    assert on_that_date == {ended: "would-destroy", held: "kept", month_start(0).strftime("%Y-%m-%d"): "would-destroy",
                            running: "would-destroy"}

    with open(key, "rb") as held_open:  # the old bytes, read through the file after the prune
        secret = held_open.read()
        done = ok(run_cli(["prune", "--keyring", keyring, "--manifest", manifest]))
        held_open.seek(0)
        assert secret.startswith(b"# created") and held_open.read() == bytes(len(secret))
    assert not key.exists() and not (keyring / "recipients" / f"{ended}.txt").exists()
    assert [json.loads(line)["action"] for line in done.stdout.decode().splitlines()] == ["destroyed", "kept"]
    audit = [json.loads(line) for line in (keyring / ".privspeech" / "audit.jsonl").read_text().splitlines()]
    mine = [e for e in audit if e.get("path") == f"identities/{ended}.key"]
    assert [e.get("event") or e["action"] for e in mine] == ["would-destroy"] * 2 + ["intent", "destroyed"]
    assert ok(run_cli(["prune", "--keyring", keyring, "--manifest", manifest])).stdout.decode().count("destroyed") == 0

    states = {e["epoch"]: e for e in map(json.loads, ok(run_cli(["keyring", "list", keyring])).stdout.decode()
                                         .splitlines())}
    assert states[ended]["state"] == "destroyed" and states[ended]["destroyed_at"]
    assert states[held]["state"] == "expired" and states[running]["state"] == "active"
    copies = [backup / Path(r["audio_filepath"]).name for r in sealed]
    gone = run_cli(["decrypt", "--keyring", keyring, copies[0], "-o", tmp_path / "gone.wav"])
    assert gone.returncode == 77 and b"keys destroyed: " + ended.encode() in gone.stderr
    assert not (tmp_path / "gone.wav").exists()
    (backup / "manifest.jsonl").write_text(manifest.read_text().replace("vault/", "backup/"))
    by_record = run_cli(["decrypt", "--keyring", keyring, backup / "manifest.jsonl", "--out-dir", tmp_path / "plain"])
    assert by_record.returncode == 1 and f"epoch {ended}: its key was destroyed on".encode() in by_record.stderr
    assert [Path(r["audio_filepath"]).name for r in records(by_record.stdout.decode())] == \
        [SOURCES[1].name, SOURCES[2].name]
    remaining = [arg for path in sorted((keyring / "identities").glob("*.key")) for arg in ("-i", path)]
    for copy, source in zip(copies, SOURCES):  # the age CLI with every key left
        opened = subprocess.run(["age", "-d", *remaining, copy], capture_output=True)
        assert (opened.returncode == 0 and opened.stdout == source.read_bytes()) == (copy != copies[0])


def test_prune_keyring_refuses_what_it_cannot_do_safely(tmp_path, keyring, vault):
    manifest, _ = vault if FAKETIME else (tmp_path / "m.jsonl", None)
    manifest.touch()
    for args, status, words in [
        (["prune"], 2, b"nothing to prune"),
        (["prune", "--keyring", keyring], 2, b"--keyring needs the manifests"),
        (["prune", "--keyring", keyring / "recipients", "--manifest", manifest], 2, b"recipients view"),
        (["prune", "--keyring", tmp_path, "--manifest", manifest], 2, b"not a privspeech keyring"),
        (["prune", "--keyring", keyring, "--manifest", manifest, "--grace", "soon"], 2, b"not a duration"),
        (["prune", "--keyring", keyring, "--manifest", manifest, "--now", "yesterday"], 2, b"--now: not an RFC 3339"),
    ]:
        proc = run_cli(args)
        assert proc.returncode == status and words in proc.stderr, (args, proc.stderr)
    manifest.chmod(0o666)
    proc = run_cli(["prune", "--keyring", keyring, "--manifest", manifest])
    assert proc.returncode == 77 and b"refusing the holds of" in proc.stderr
    assert sorted(p.name for p in (keyring / "identities").glob("*.key")) == \
        sorted(p.name for p in (keyring / "identities").glob("*.key"))  # nothing destroyed
    assert not list((keyring / "identities").glob("*.destroyed"))


def test_now_plans_file_expiry_too_and_one_run_holds_a_keyring(tmp_path, keyring):
    import fcntl

    root = tmp_path / "calls"
    root.mkdir()
    ok(run_cli(["init", root]))
    shutil.copy(SOURCES[0], root / SOURCES[0].name)
    (root / "m.jsonl").write_bytes(ok(run_cli(["scan", root / SOURCES[0].name, "--retain", "30d"])).stdout)
    later = ts(dt.datetime.now(UTC) + dt.timedelta(days=31))
    assert ok(run_cli(["prune", root, "--dry-run"])).stdout == b""
    plan = ok(run_cli(["prune", root, "--now", later, "--dry-run"])).stdout
    planned = [json.loads(line) for line in plan.splitlines()]
    assert {(a["action"], a["kind"]) for a in planned} == {("would-delete", "file"), ("would-delete", "record")}
    refused = run_cli(["prune", root, "--now", later])
    assert refused.returncode == 2 and (root / SOURCES[0].name).exists()
    earlier = ts(dt.datetime.now(UTC) - dt.timedelta(days=1))
    assert ok(run_cli(["prune", root, "--now", earlier])).stdout == b"" and (root / SOURCES[0].name).exists()

    manifest = root / "m.jsonl"
    with open(keyring / ".privspeech" / "prune.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        busy = run_cli(["prune", "--keyring", keyring, "--manifest", manifest])
    assert busy.returncode == 75 and b"locked by another prune run" in busy.stderr
    assert ok(run_cli(["prune", "--keyring", keyring, "--manifest", manifest])).returncode == 0


def test_a_key_whose_recipient_was_lost_gets_it_back_and_is_never_replaced(keyring):
    recipient = sorted((keyring / "recipients").glob("*.txt"))[1]
    key = keyring / "identities" / recipient.name.replace(".txt", ".key")
    before, key_bytes = recipient.read_text(), key.read_bytes()
    recipient.unlink()  # as a run killed between writing the key and its recipient leaves it
    ok(run_cli(["keyring", "extend", keyring, "--until", "2mo"]))
    assert recipient.read_text() == before and key.read_bytes() == key_bytes
