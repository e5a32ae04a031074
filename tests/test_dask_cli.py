"""Record stages on a real Dask cluster (--scheduler): a `dask scheduler` and two `dask worker` processes on
127.0.0.1, each in a working folder of its own, running scan | anonymize | noise | encrypt on corpus files with the
same results as a local run; resume after the client is killed; a worker killed mid-batch; a missing input;
--scheduler local; secrets kept out of the tasks; and every misuse answered with one line and its exit status."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("distributed", reason="the dask extra is not installed (pip install 'privspeech[dask]')")

from dask_cluster import DaskCluster  # noqa: E402
from privspeech.errors import ExitStatus  # noqa: E402

from conftest import VCTK, foreground_sigint, no_temp_files, records, run_cli  # noqa: E402

SPEAKERS = ["p225", "p226"]  # 20 recordings


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    found = DaskCluster(tmp_path_factory.mktemp("dask"))
    yield found
    found.close()


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keys")
    assert run_cli(["keygen", "--anon", "-o", folder / "anon.key"]).returncode == 0
    made = run_cli(["keygen", "-o", folder / "me.key"])
    (folder / "me.pub").write_bytes(made.stdout)
    return folder


def pipeline(keys: Path, cwd: Path, *extra) -> list[subprocess.CompletedProcess]:
    """scan | anonymize | noise | encrypt, each step run on the previous one's stdout, inputs given relative to
    `cwd` (the client's folder) and outputs in folders relative to it."""
    inputs = [os.path.relpath(VCTK / speaker, cwd) for speaker in SPEAKERS]
    steps = [["scan", *inputs, "--key-file", keys / "anon.key", "--speaker-from", "dir"],
             ["anonymize", "-k", keys / "anon.key", "--out-dir", "anon"],
             ["noise", "--epsilon", "100", "--seed", "test", "--out-dir", "noise"],
             ["encrypt", "-R", keys / "me.pub", "--out-dir", "vault"]]
    done, stdin = [], None
    for args in steps:
        proc = run_cli([*args, *extra], input=stdin, cwd=cwd)
        assert proc.returncode == 0, proc.stderr.decode()
        done.append(proc)
        stdin = proc.stdout
    return done


def same(record: dict) -> dict:
    """A record less what differs between two runs of the same work: when it ran, a DP release's random id, and a
    ciphertext's hash (age encrypts each file with a fresh key)."""
    record = json.loads(json.dumps(record))
    record["privspeech"].pop("created_at", None)
    ops = record["privspeech"]["ops"]
    for op in ops:
        op.pop("at", None)
        op.pop("release_id", None)
    if ops and ops[-1]["op"] == "encrypt":
        record["privspeech"].pop("sha256")
    return record


@pytest.fixture(scope="module")
def local(keys, tmp_path_factory):
    """The pipeline run on this machine: the folder it ran in, and each step's records."""
    folder = tmp_path_factory.mktemp("local")
    return folder, [records(proc.stdout.decode()) for proc in pipeline(keys, folder)]


def same_files(folder: Path, other: Path, pattern: str = "*.wav") -> bool:
    files = sorted(p.relative_to(folder) for p in folder.rglob(pattern))
    return bool(files) and files == sorted(p.relative_to(other) for p in other.rglob(pattern)) and all(
        (folder / f).read_bytes() == (other / f).read_bytes() for f in files)


@pytest.mark.slow
def test_pipeline_on_a_cluster_gives_what_a_local_run_gives(cluster, keys, local, tmp_path):
    here, expected = local
    steps = pipeline(keys, tmp_path, "--scheduler", cluster.address)
    got = [records(proc.stdout.decode()) for proc in steps]
    ids = [f"{speaker}_{n}" for speaker in SPEAKERS for n in
           sorted(p.stem.split("_")[1] for p in (VCTK / speaker).glob("*.wav"))]
    for step, want in zip(got, expected):
        assert [r["id"] for r in step] == ids  # input order kept
        assert [same(r) for r in step] == [same(r) for r in want]
    assert got[1][0]["audio_filepath"] == "anon/p225_003.wav"  # paths as the client named them
    for name in ("anon", "noise"):
        assert same_files(tmp_path / name, here / name)
    decrypted = run_cli(["decrypt", "-i", keys / "me.key", "--out-dir", "plain", "--scheduler", cluster.address],
                        input=steps[3].stdout, cwd=tmp_path)
    assert decrypted.returncode == 0, decrypted.stderr.decode()
    assert same_files(tmp_path / "plain", here / "noise")
    assert no_temp_files(tmp_path) and not list(cluster.folder.rglob("*.wav"))  # nothing in the workers' folders


def anonymize_args(keys: Path, address: str) -> list:
    return [sys.executable, "-m", "privspeech", "anonymize", "-k", keys / "anon.key", "--out-dir", "anon",
            "--scheduler", address]


def start_anonymize(keys: Path, cluster: DaskCluster, cwd: Path, manifest: Path) -> subprocess.Popen:
    with open(manifest, "rb") as stdin:
        return subprocess.Popen(anonymize_args(keys, cluster.address), stdin=stdin, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, cwd=cwd)


def scanned(local, tmp_path: Path) -> Path:
    """The local run's scan manifest, as a file in `tmp_path`."""
    manifest = tmp_path / "scan.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in local[1][0]))
    return manifest


@pytest.mark.slow
def test_a_rerun_after_the_client_is_killed_resumes(cluster, keys, local, tmp_path):
    here, expected = local
    manifest = scanned(local, tmp_path)
    client = start_anonymize(keys, cluster, tmp_path, manifest)
    for _ in range(3):
        assert client.stdout.readline()
    client.kill()
    client.communicate()
    deadline = time.monotonic() + 30  # what the workers were running when the client died finishes there
    while not no_temp_files(tmp_path / "anon") and time.monotonic() < deadline:
        time.sleep(0.2)
    rerun = run_cli(anonymize_args(keys, cluster.address)[3:], input=manifest.read_bytes(), cwd=tmp_path)
    err = rerun.stderr.decode()
    assert rerun.returncode == 0, err
    resumed = int(err.split(" already done (resumed)")[0].rsplit(" ", 1)[-1])
    assert resumed >= 3 and f"anonymize: {20 - resumed} done, {resumed} already done (resumed)" in err
    assert [same(r) for r in records(rerun.stdout.decode())] == [same(r) for r in expected[1]]
    assert same_files(tmp_path / "anon", here / "anon") and no_temp_files(tmp_path)


@pytest.mark.slow
def test_a_worker_killed_mid_batch_leaves_no_partial_file_and_the_run_completes(keys, local, tmp_path):
    here, expected = local
    manifest = scanned(local, tmp_path)
    cluster = DaskCluster(tmp_path / "dask")
    try:
        client = start_anonymize(keys, cluster, tmp_path, manifest)
        first = client.stdout.readline()
        cluster.kill_busy_worker()
        out, err = client.communicate(timeout=300)
    finally:
        cluster.close()
    assert client.returncode == 0 and "anonymize: 20 done" in err.decode(), err.decode()
    assert [same(r) for r in records((first + out).decode())] == [same(r) for r in expected[1]]
    assert same_files(tmp_path / "anon", here / "anon") and no_temp_files(tmp_path)


@pytest.mark.slow
def test_losing_the_scheduler_is_a_temporary_failure(keys, local, tmp_path):
    manifest = scanned(local, tmp_path)
    cluster = DaskCluster(tmp_path / "dask")
    try:
        client = start_anonymize(keys, cluster, tmp_path, manifest)
        first = client.stdout.readline()
        cluster.scheduler.send_signal(signal.SIGKILL)
        out, err = client.communicate(timeout=120)
    finally:
        cluster.close()
    assert client.returncode == ExitStatus.TEMPFAIL and "Traceback" not in err.decode(), err.decode()
    assert f"--scheduler {cluster.address}: the cluster dropped the work" in err.decode()
    done = records((first + out).decode())
    assert [same(r) for r in done] == [same(r) for r in local[1][1][:len(done)]]


@pytest.mark.slow
def test_a_missing_input_fails_that_record_only(cluster, tmp_path):
    files = sorted((VCTK / "p225").glob("*.wav"))[:2]
    lines = [{"audio_filepath": str(files[0])}, {"audio_filepath": str(tmp_path / "gone.wav")},
             {"audio_filepath": str(files[1])}]
    proc = run_cli(["noise", "--epsilon", "100", "--seed", "t", "--out-dir", "noisy", "--scheduler", cluster.address],
                   input="".join(json.dumps(line) + "\n" for line in lines).encode(), cwd=tmp_path)
    err = proc.stderr.decode()
    assert proc.returncode == ExitStatus.FAILED, err
    assert [Path(r["audio_filepath"]).name for r in records(proc.stdout.decode())] == [f.name for f in files]
    assert f"{tmp_path / 'gone.wav'}: no such file" in err and "every worker must see the inputs" in err
    assert "Traceback" not in err and sorted(p.name for p in (tmp_path / "noisy").glob("*.wav")) == sorted(
        f.name for f in files)


@pytest.mark.slow
def test_stdin_and_stdout_stay_on_this_machine(cluster, keys, tmp_path):
    wav = sorted((VCTK / "p225").glob("*.wav"))[0]
    proc = run_cli(["anonymize", "-k", keys / "anon.key", "-o", "-", "--scheduler", cluster.address],
                   input=wav.read_bytes(), cwd=tmp_path)
    assert proc.returncode == ExitStatus.USAGE and proc.stdout == b""
    assert b"stdin and stdout stay on this machine" in proc.stderr


@pytest.mark.slow
def test_scheduler_local_from_the_environment(tmp_path):
    proc = run_cli(["scan", VCTK / "p225", "-j", "2"], env={"PRIVSPEECH_SCHEDULER": "local"}, cwd=tmp_path)
    here = run_cli(["scan", VCTK / "p225"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    assert [same(r) for r in records(proc.stdout.decode())] == [same(r) for r in records(here.stdout.decode())]
    assert "scan: 10 done" in proc.stderr.decode()


@pytest.mark.slow
def test_ctrl_c_on_a_local_cluster_is_one_line_and_a_rerun_finishes(keys, local, tmp_path):
    """The terminal's Ctrl-C reaches the whole process group, LocalCluster's workers included: they ignore it
    and the client, interrupted, stops them."""
    manifest = scanned(local, tmp_path)
    args = [*anonymize_args(keys, "local"), "-j", "2"]
    with open(manifest, "rb") as stdin:
        client = subprocess.Popen(args, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path,
                                  start_new_session=True, preexec_fn=foreground_sigint)
    assert client.stdout.readline()
    os.killpg(client.pid, signal.SIGINT)
    _, err = client.communicate(timeout=120)
    assert client.returncode == ExitStatus.INTERRUPTED and err.decode().strip() == "privspeech: error: interrupted"
    rerun = run_cli(args[3:], input=manifest.read_bytes(), cwd=tmp_path)
    assert rerun.returncode == 0 and len(records(rerun.stdout.decode())) == 20, rerun.stderr.decode()
    assert same_files(tmp_path / "anon", local[0] / "anon") and no_temp_files(tmp_path)


@pytest.mark.slow
def test_no_secret_goes_into_a_task(cluster, keys, cli, monkeypatch, tmp_path):
    """What Dask pickles to send (the tasks and everything else) holds no key, identity or passphrase."""
    from distributed.protocol import pickle as dask_pickle

    from privspeech.keys import load_key_file

    sent = []
    real = dask_pickle.dumps

    def dumps(x, *args, **kwargs):
        blob = real(x, *args, **kwargs)
        sent.append(blob)
        return blob

    monkeypatch.setattr(dask_pickle, "dumps", dumps)
    (tmp_path / "pass.txt").write_text("a passphrase nobody may see\n")
    (tmp_path / "pass.txt").chmod(0o600)
    monkeypatch.chdir(tmp_path)

    def run(args, stdin=None):
        result = cli([*args, "--scheduler", cluster.address], input=stdin)
        assert result.exit_code == 0, result.stderr
        return result.stdout

    scan = run(["scan", VCTK / "p225", "--key-file", keys / "anon.key"])
    run(["anonymize", "-k", keys / "anon.key", "--out-dir", "anon"], scan)
    vault = run(["encrypt", "-R", keys / "me.pub", "--verify", "-i", keys / "me.key", "--out-dir", "vault"], scan)
    run(["decrypt", "-i", keys / "me.key", "--out-dir", "plain"], vault)
    sealed = run(["encrypt", "-p", "--passphrase-file", "pass.txt", "--out-dir", "sealed"], scan)
    run(["decrypt", "--passphrase-file", "pass.txt", "--out-dir", "opened"], sealed)
    key = load_key_file(keys / "anon.key")[0].material
    identity = next(line for line in (keys / "me.key").read_text().splitlines() if line.startswith("AGE-SECRET"))
    secrets = [key, key.hex().encode(), identity.encode(), b"a passphrase nobody may see"]
    assert len(sent) > 50 and not [s for s in secrets if any(s in blob for blob in sent)]
    assert len(list((tmp_path / "plain").glob("*.wav"))) == len(list((tmp_path / "opened").glob("*.wav"))) == 10


@pytest.mark.parametrize("args, status, words", [
    (["scan", "p225", "--tls-cert", "c.pem"], ExitStatus.USAGE, "apply with --scheduler"),
    (["scan", "p225", "--scheduler", "tcp://127.0.0.1:9", "-j", "2"], ExitStatus.USAGE,
     "--jobs sets the worker processes of --scheduler local only"),
    (["scan", "p225", "--scheduler", "tcp://127.0.0.1:9", "--tls-cert", "c.pem"], ExitStatus.USAGE,
     "apply to a tls:// scheduler address"),
    (["scan", "p225", "--scheduler", "tls://127.0.0.1:9", "--tls-cert", "c.pem", "--tls-key", "k.pem",
      "--tls-ca-file", "ca.pem"], ExitStatus.NOINPUT, "--tls-ca-file ca.pem: no such file"),
    (["anonymize", "p225", "--out-dir", "o", "--scheduler", "tcp://127.0.0.1:9"], ExitStatus.USAGE,
     "--scheduler needs --key-file"),
    (["encrypt", "p225", "-p", "--out-dir", "o", "--scheduler", "tcp://127.0.0.1:9"], ExitStatus.USAGE,
     "-p with --scheduler needs --passphrase-file"),
    (["encrypt", "p225", "-p", "--passphrase-fd", "0", "--out-dir", "o", "--scheduler", "tcp://127.0.0.1:9"],
     ExitStatus.USAGE, "--passphrase-fd cannot reach the workers"),
    (["decrypt", "p225", "--out-dir", "o", "--scheduler", "tcp://127.0.0.1:9"], ExitStatus.USAGE,
     "decrypt with --scheduler needs -i or --passphrase-file"),
    (["encrypt", "p225", "-r", "age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq", "-i", "me.key",
      "--remove-source", "--out-dir", "o", "--scheduler", "tcp://127.0.0.1:9"], ExitStatus.USAGE,
     "--remove-source runs on this machine only"),
])
def test_misuse_is_one_line_with_its_status(cli, monkeypatch, tmp_path, args, status, words):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "p225").symlink_to(VCTK / "p225")
    result = cli(args)
    assert result.exit_code == status and words in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "o").exists()


def certificates(folder: Path) -> dict[str, Path]:
    """A CA and one certificate it signed (for 127.0.0.1), with its key, as PEM files."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def name(text):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])

    now = dt.datetime.now(dt.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(name("test CA")).issuer_name(name("test CA"))
          .public_key(ca_key.public_key()).serial_number(1).not_valid_before(now - dt.timedelta(hours=1))
          .not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(ca_key, hashes.SHA256()))
    cert = (x509.CertificateBuilder().subject_name(name("127.0.0.1")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(2).not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False).sign(ca_key, hashes.SHA256()))
    files = {"ca": folder / "ca.pem", "cert": folder / "cert.pem", "key": folder / "key.pem"}
    files["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files["key"].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    files["key"].chmod(0o600)
    return files


@pytest.mark.slow
def test_a_tls_cluster_with_the_tls_options(tmp_path):
    tls = certificates(tmp_path)
    cluster = DaskCluster(tmp_path / "dask", workers=1, tls=tls)
    try:
        assert cluster.address.startswith("tls://")
        args = ["scan", VCTK / "p225", "--scheduler", cluster.address]
        proc = run_cli([*args, "--tls-ca-file", tls["ca"], "--tls-cert", tls["cert"], "--tls-key", tls["key"]],
                       cwd=tmp_path)
        config = {f"DASK_DISTRIBUTED__COMM__TLS__{name}": str(tls[file]) for name, file in
                  [("CA_FILE", "ca"), ("CLIENT__CERT", "cert"), ("CLIENT__KEY", "key")]}
        configured = run_cli(args, cwd=tmp_path, env=config)  # Dask's own configuration
        refused = run_cli(args, cwd=tmp_path)
    finally:
        cluster.close()
    for done in (proc, configured):
        assert done.returncode == 0 and "scan: 10 done" in done.stderr.decode(), done.stderr.decode()
        assert len(records(done.stdout.decode())) == 10 and b"unencrypted" not in done.stderr
    assert refused.returncode == ExitStatus.USAGE and b"a tls:// scheduler needs this client's certificate" in \
        refused.stderr


def closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.parametrize("address, warned", [(f"tcp://127.0.0.1:{closed_port()}", False),
                                             ("tcp://192.0.2.1:8786", True)])  # TEST-NET-1: never answers
def test_an_unreachable_scheduler_is_a_temporary_failure(address, warned, tmp_path):
    proc = run_cli(["scan", VCTK / "p225", "--scheduler", address], cwd=tmp_path,
                   env={"DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "1s"})
    err = proc.stderr.decode()
    assert proc.returncode == ExitStatus.TEMPFAIL and f"--scheduler {address}: cannot be reached" in err
    assert ("cross the network unencrypted" in err) == warned and "Traceback" not in err and proc.stdout == b""


@pytest.mark.slow
def test_a_server_that_is_no_scheduler_is_a_temporary_failure(tmp_path):
    """An HTTP answer (a dashboard, a proxy) is not read as a Dask message."""
    import socket
    import threading

    server = socket.create_server(("127.0.0.1", 0))

    def answer():
        with server:
            while True:
                try:
                    conn, _ = server.accept()
                except OSError:
                    return
                with conn:
                    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n")

    threading.Thread(target=answer, daemon=True).start()
    address = f"tcp://127.0.0.1:{server.getsockname()[1]}"
    try:
        proc = run_cli(["scan", VCTK / "p225", "--scheduler", address], cwd=tmp_path,
                       env={"DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "2s"})
    finally:
        server.close()
    err = proc.stderr.decode()
    assert proc.returncode == ExitStatus.TEMPFAIL, err
    assert f"--scheduler {address}: does not answer as a Dask scheduler" in err and "Traceback" not in err


@pytest.mark.slow
def test_without_the_dask_extra_scheduler_says_how_to_install_it(tmp_path):
    code = ("import runpy, sys; sys.modules['distributed'] = None; sys.argv = ['privspeech', *sys.argv[1:]]; "
            "runpy.run_module('privspeech', run_name='__main__')")
    proc = subprocess.run([sys.executable, "-c", code, "scan", VCTK / "p225", "--scheduler", "local"],
                          capture_output=True, cwd=tmp_path)
    err = proc.stderr.decode()
    assert proc.returncode == ExitStatus.USAGE and "pip install 'privspeech[dask]'" in err
    assert len(err.strip().splitlines()) <= 2 and proc.stdout == b""
