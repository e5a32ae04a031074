"""Secrets by reference: a stage's work, pickled as a cluster's task, carries the paths of the key, identity and
passphrase files and never what they hold; unpickled elsewhere, it reads them and does the same work."""

import functools
import pickle
import shutil

import pytest

from privspeech import keys
from privspeech.crypto import identities, passphrase, recipients
from privspeech.manifest import Record
from privspeech.secretref import SecretFile, reveal
from privspeech.stages.anonymize import AnonymizeSettings, anonymize_record
from privspeech.stages.crypto import DecryptSettings, EncryptSettings, decrypt_record, encrypt_record
from privspeech.stages.scan import ScanSettings, scan_record
from privspeech.task import Task

from conftest import VCTK

try:
    import cloudpickle  # what Dask pickles with when pickle cannot
except ImportError:
    cloudpickle = None

SOURCE = VCTK / "p225" / "p225_003.wav"
PASSPHRASE = "correct horse battery staple"


@pytest.fixture
def secrets(tmp_path):
    """Key, identity and passphrase files, and the secret texts none of them may leak."""
    key = keys.generate()
    keys.write_key_file(tmp_path / "anon.key", key)
    identity = identities.generate()
    (tmp_path / "me.key").write_bytes(identities.identity_text(identity))
    (tmp_path / "me.key").chmod(0o600)
    (tmp_path / "pass.txt").write_text(PASSPHRASE + "\n")
    (tmp_path / "pass.txt").chmod(0o600)
    identities.write_identity_file(tmp_path / "locked.key", passphrase=PASSPHRASE)
    return {"key": key, "recipient": identities.recipient(identity), "folder": tmp_path,
            "texts": [key.material, key.material.hex().encode(), str(identity).encode(), PASSPHRASE.encode()]}


def travelled(work, task: Task, texts: list[bytes]):
    """`work` and `task` as a cluster's task travels (pickled as Dask does, with pickle or cloudpickle), checked for
    the secret `texts`, and unpickled."""
    for dumps in [pickle.dumps] + ([cloudpickle.dumps] if cloudpickle else []):
        blob = dumps((work, task))
        assert not [text for text in texts if text in blob]
    return pickle.loads(pickle.dumps((work, task)))


@pytest.mark.slow
def test_anonymize_and_scan_tasks_carry_the_key_file_path_only(secrets, tmp_path):
    ref = SecretFile(keys.load_key_file, str(secrets["folder"] / "anon.key"))
    local = anonymize_record(Task(Record(str(SOURCE), id="p225_003", speaker="p225"), str(tmp_path / "local.wav")),
                             settings=AnonymizeSettings(key=secrets["key"]))
    work, task = travelled(functools.partial(anonymize_record, settings=AnonymizeSettings(key=ref)),
                           Task(Record(str(SOURCE), id="p225_003", speaker="p225"), str(tmp_path / "remote.wav")),
                           secrets["texts"])
    remote = work(task)
    assert (tmp_path / "remote.wav").read_bytes() == (tmp_path / "local.wav").read_bytes()
    assert remote.speaker == local.speaker and remote.privspeech.ops[-1] == {**local.privspeech.ops[-1],
                                                                             "at": remote.privspeech.ops[-1]["at"]}
    work, task = travelled(functools.partial(scan_record, settings=ScanSettings(key=ref)), Task(Record(str(SOURCE)),
                                                                                                None), secrets["texts"])
    assert work(task).privspeech.source == scan_record(Task(Record(str(SOURCE)), None),
                                                       ScanSettings(key=secrets["key"])).privspeech.source


@pytest.mark.slow
def test_encrypt_and_decrypt_tasks_carry_identity_and_passphrase_paths_only(secrets, tmp_path):
    folder = secrets["folder"]
    pass_ref = SecretFile(passphrase.read_file, str(folder / "pass.txt"))
    for name, settings in [
        ("verified.age", EncryptSettings(recipients=recipients.collect([secrets["recipient"]]), verify=True,
                                         verify_with=SecretFile(identities.load_identities, (str(folder / "me.key"),)))),
        ("sealed.age", EncryptSettings(passphrase=pass_ref)),
    ]:
        work, task = travelled(functools.partial(encrypt_record, settings=settings),
                               Task(Record(str(SOURCE)), str(tmp_path / name)), secrets["texts"])
        work(task)
    for name, settings in [
        ("verified.age", DecryptSettings(identities=SecretFile(identities.load_identities,
                                                               (str(folder / "locked.key"), str(folder / "me.key")),
                                                               pass_ref))),
        ("sealed.age", DecryptSettings(passphrase=pass_ref)),
    ]:
        work, task = travelled(functools.partial(decrypt_record, settings=settings),
                               Task(Record(str(tmp_path / name)), str(tmp_path / f"{name}.wav")), secrets["texts"])
        work(task)
        assert (tmp_path / f"{name}.wav").read_bytes() == SOURCE.read_bytes()


def test_a_key_file_is_read_once_and_again_when_it_changes(tmp_path):
    path = tmp_path / "anon.key"
    first, second = keys.generate(), keys.generate()
    keys.write_key_file(path, first)
    ref = SecretFile(keys.load_key_file, str(path))
    assert reveal(ref) == first and reveal(ref) is reveal(ref)
    path.unlink()
    keys.write_key_file(path, second)
    assert reveal(ref) == second
    assert reveal(first) is first


def test_recipients_travel_as_their_public_texts(tmp_path):
    ssh = shutil.which("ssh-keygen")
    texts = [identities.recipient(identities.generate())]
    if ssh:
        import subprocess

        subprocess.run([ssh, "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "id")], check=True)
        texts.append((tmp_path / "id.pub").read_text().strip())
    found = pickle.loads(pickle.dumps(recipients.collect(texts)))
    assert found.texts == tuple(texts) and len(found) == len(texts) and len(found.parsed()) == len(texts)
