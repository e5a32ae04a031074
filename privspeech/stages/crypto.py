"""The `encrypt` and `decrypt` stages, and what decrypt takes as input.

Encrypted outputs keep the whole input name and add `.age` (``a/0003.wav`` -> ``a/0003.wav.age``); decryption
drops it again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Iterator, Sequence

from ..console import Env
from ..crypto import header
from ..crypto.epochs import Epoch
from ..crypto.identities import Identity
from ..crypto.keyring import Keyring, epoch_of_expiry, keyring_identities
from ..crypto.passphrase import Passphrase
from ..crypto.recipients import Recipients
from ..crypto.stream import Written, decrypt_stream, encrypt_stream, op_fields
from ..managed import AGE_SUFFIX as SUFFIX
from ..errors import DataError, from_os_error, IOFailure, NotFound, UsageError, WrongKey
from ..fsutil import STDIO, atomic_write, binary_stdout
from ..inputs import Item, collect
from ..manifest import Record
from ..removal import FileIdentity
from ..secretref import SecretFile, reveal
from ..task import Task
from ..timeutil import format_ts, now
from . import Naming, Settings, setting
from .records import output_record

ENCRYPTED = Naming("append", SUFFIX)
DECRYPTED = Naming("strip", SUFFIX)


@dataclass(frozen=True)
class EncryptSettings(Settings):
    """How to encrypt. With `verify` each ciphertext is decrypted once (with `verify_with`, or the passphrase)
    and compared with the plaintext read, before it is published; `remove_source` implies it. For a cluster's
    workers the passphrase and `verify_with` are SecretFile references. An output is named for resume by its
    recipients and armor, and whether a passphrase made it (never which)."""

    recipients: Recipients = setting(identity=lambda found: sorted(found.texts), default=Recipients())
    passphrase: Passphrase | None = setting(identity=lambda secret: secret is not None, default=None)
    armor: bool = False
    verify: bool = setting(identity=None, default=False)
    verify_with: Sequence[Identity] | SecretFile = setting(identity=None, default=())
    remove_source: bool = setting(identity=None, default=False)
    keyring: Keyring | None = setting(identity=lambda found: found and found.id, default=None)
    default_epoch: str | None = None  # for records without expires_at, with a keyring

    @property
    def verifies(self) -> bool:
        return self.verify or self.remove_source


@dataclass(frozen=True)
class DecryptSettings(Settings):
    """How to decrypt; for a cluster's workers the identities and passphrases are SecretFile references. Any key
    that opens a file gives the same plaintext, so none names the output."""

    identities: Sequence[Identity] | SecretFile = setting(identity=None, default=())
    passphrase: Passphrase | None = setting(identity=None, default=None)
    keyring: Keyring | None = setting(identity=None, default=None)
    keyring_passphrase: Passphrase | SecretFile | None = setting(identity=None, default=None)


def age_files(folder: Path) -> list[str]:
    """The `.age` files under `folder`, sorted, hidden files and folders skipped."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found.extend(os.path.join(dirpath, n) for n in sorted(filenames)
                     if n.endswith(SUFFIX) and not n.startswith("."))
    return found


def looks_encrypted(head: bytes) -> bool:
    """True when `head` (the first bytes of a stream) starts an age file, binary or armored."""
    return head.lstrip().startswith((header.MAGIC, header.ARMOR_BEGIN))


@contextlib.contextmanager
def _source(path: str) -> Iterator[BinaryIO]:
    if path == STDIO:
        yield sys.stdin.buffer
        return
    try:
        fh = open(path, "rb")
    except OSError as exc:
        raise from_os_error(exc, path) from None
    with fh:
        yield fh


@contextlib.contextmanager
def _sink(dest: str, *, force: bool, private: bool) -> Iterator[BinaryIO]:
    if dest == STDIO:
        out = binary_stdout()
        yield out
        out.flush()
        return
    with atomic_write(dest, force=force, private=private) as fh:
        yield fh


def encrypt_record(task: Task, settings: EncryptSettings) -> Record:
    """Encrypt the task's file to `task.dest` ('-': stdout) and return the record of the ciphertext.

    With `settings.remove_source` the source must be a regular file holding audio; the ciphertext is verified
    before it is published, and `task.consumed` names the source as it was read, for the runner to remove it
    once the record is journaled. A source that changed while it was read fails the record.
    """
    src, dest = task.record.audio_filepath, task.dest
    if settings.verifies and STDIO in (src, dest):
        raise UsageError("verifying a ciphertext needs the source and the ciphertext as files, not stdin or "
                         "stdout")
    if settings.remove_source:
        _check_audio(src)
    expected = task.record.privspeech.sha256 if src != STDIO else None
    fields, recipients, verify_with = {}, settings.recipients, settings.verify_with
    if settings.keyring is not None:
        epoch = _epoch(task.record, settings)
        recipients = Recipients(recipients.texts + (settings.keyring.recipient(epoch),))
        fields = {"keyring": {"id": settings.keyring.id, "epoch": epoch.id}}
        if settings.recipients.texts:
            fields["extra_recipients"] = list(settings.recipients.texts)
        if settings.verifies and not verify_with:
            verify_with = settings.keyring.identities(epoch.id)
    with _source(src) as reader, _sink(dest, force=task.force, private=False) as writer:
        before = FileIdentity.of(os.fstat(reader.fileno())) if settings.remove_source else None
        written = encrypt_stream(reader, writer, recipients=recipients.parsed(),
                                 passphrase=settings.passphrase, armor=settings.armor, name=src, out_name=dest,
                                 input_sha256=expected, hash_input=settings.verifies, hash_output=task.record_kept)
        if settings.verifies:
            _verify(writer, written, verify_with, settings.passphrase, src, dest)
        if before is not None:
            if FileIdentity.of(os.fstat(reader.fileno())) != before:
                raise DataError(f"{src}: changed while it was being encrypted", hint="nothing was written "
                                "and the source was kept; run again")
            task.consumed = before
    return output_record(task, sha256=written.sha256, op="encrypt",
                         **op_fields(recipients=len(recipients), armor=settings.armor,
                                     passphrase=settings.passphrase is not None), **fields)


def _epoch(record: Record, settings: EncryptSettings) -> Epoch:
    """The keyring epoch a record is encrypted under: the first to end at or after its expires_at."""
    keyring = settings.keyring
    expires = record.privspeech.expires_at
    if expires is None and settings.default_epoch is None:
        raise DataError(f"{record.audio_filepath}: no expires_at, so no keyring epoch to encrypt it under",
                        hint="give records a retention with privspeech scan --retain DURATION, or name an epoch "
                             "with --keyring-default-epoch")
    epoch = keyring.period.named(settings.default_epoch) if expires is None else epoch_of_expiry(keyring, expires)
    if epoch.end <= now():
        raise DataError(f"{record.audio_filepath}: its keyring epoch {epoch.id} ended on {format_ts(epoch.end)}: "
                        f"the record has expired", hint="prune deletes it; nothing is encrypted")
    return epoch


def _check_audio(src: str) -> None:
    """Refuse (DATAERR) a source that --remove-source must not delete: not a regular file, or not audio."""
    from ..audio import probe  # numpy and libsndfile: imported only by the runs that need them

    try:
        st = os.lstat(src)
    except OSError as exc:
        raise from_os_error(exc, src) from None
    if not stat.S_ISREG(st.st_mode):
        raise DataError(f"{src}: not a regular file (a symlink?); --remove-source deletes only regular files",
                        hint="nothing was written")
    try:
        probe(src)
    except DataError:
        raise DataError(f"{src}: not a recognised audio file; --remove-source deletes only audio",
                        hint="nothing was written") from None


class _HashSink:
    def __init__(self):
        self.hash = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        return len(data)


def _verify(ciphertext: BinaryIO, written: Written, identities: Sequence[Identity] | SecretFile,
            passphrase: Passphrase | None, src: str, dest: str) -> None:
    """Decrypt the unpublished ciphertext once and compare it with the plaintext that was encrypted."""
    ciphertext.flush()
    ciphertext.seek(0)
    sink = _HashSink()
    try:
        decrypt_stream(ciphertext, sink, identities=reveal(identities),  # type: ignore[arg-type]
                       passphrase=passphrase, name=dest)
    except WrongKey:
        raise WrongKey(f"{dest}: the identity given with -i does not open the new ciphertext",
                       hint="give the identity of one of the recipients; nothing was written and the source was "
                            "kept") from None
    if sink.hash.hexdigest() != written.input_sha256:
        raise IOFailure(f"{dest}: does not decrypt to {src}", hint="nothing was written and the source was "
                        "kept; check the disk and memory")


def decrypt_record(task: Task, settings: DecryptSettings) -> Record:
    """Decrypt the task's age file to `task.dest` ('-': stdout; a file: 0600, all or nothing) and return the
    record of the plaintext."""
    src, dest = task.record.audio_filepath, task.dest
    found = list(reveal(settings.identities))
    if settings.keyring is not None:
        found += keyring_identities(settings.keyring, task.record, reveal(settings.keyring_passphrase),
                                    others=bool(found))
    try:
        with _source(src) as reader, _sink(dest, force=task.force, private=True) as writer:
            written = decrypt_stream(reader, writer, identities=found, passphrase=settings.passphrase, name=src,
                                     out_name=dest, hash_output=task.record_kept)
    except WrongKey as exc:
        destroyed = [f"{e.epoch.id} on {e.destroyed_at}" for e in settings.keyring.epochs() if e.destroyed_at] \
            if settings.keyring is not None else []
        if not destroyed:
            raise
        raise exc.reworded(f"{src}: no live key of keyring {settings.keyring.path} opens it; keys destroyed: "
                           f"{', '.join(destroyed)}", hint="a file encrypted to a destroyed epoch cannot be decrypted "
                           "any more, by design") from None
    return output_record(task, sha256=written.sha256, op="decrypt", format="age")


def decrypt_items(args: Sequence[str], env: Env, *, skip_invalid: bool = False) -> Iterator[Item]:
    """Work items for decryption: `.age` files, folders of them (layout kept), manifests, or stdin (an age
    file or a manifest)."""
    index = 0
    for arg in list(args) or [STDIO]:
        if arg != STDIO and os.path.isdir(arg):
            found = age_files(Path(arg))
            if not found:
                raise NotFound(f"{arg}: no .age files found")
            items = (Item(0, Record(audio_filepath=full, id=_stem(rel)), rel.removesuffix(SUFFIX))
                     for full, rel in ((f, os.path.relpath(f, arg)) for f in found))
        elif arg == STDIO and not env.stdin_is_tty and looks_encrypted(_peek_stdin(env)):
            items = iter([Item(0, Record(audio_filepath=STDIO, id="stdin"), "stdin")])
        else:
            items = collect([arg], env, skip_invalid=skip_invalid)
        for item in items:
            yield dataclasses.replace(item, index=index)
            index += 1


def _stem(rel: str) -> str:
    return str(PurePosixPath(rel.removesuffix(SUFFIX)).with_suffix(""))


def _peek_stdin(env: Env) -> bytes:
    buffer = getattr(env.stdin, "buffer", None)
    return buffer.peek(64)[:64] if buffer is not None and hasattr(buffer, "peek") else b""
