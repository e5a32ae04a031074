"""`privspeech encrypt`: age-format encryption of recordings (files anyone can open with `age -d`)."""

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..console import Env
from ..errors import NotPermitted, UsageError
from . import run as runs
from .command import command
from .options import AgeJobs, Inputs, RunOptions, record_stage

Passphrase = Annotated[bool, typer.Option(
    "--passphrase", "-p", help="Encrypt with a passphrase (scrypt) instead of recipients: in memory, files up to "
                               "64 MiB, and each file costs about a second of scrypt.")]
PassphraseFd = Annotated[Optional[int], typer.Option(
    "--passphrase-fd", metavar="N", help="Read the passphrase from file descriptor N (first line).")]
PassphraseFile = Annotated[Optional[Path], typer.Option(
    "--passphrase-file", metavar="PATH", help="Read the passphrase from the first line of PATH.", dir_okay=False)]
Keyring = Annotated[Optional[Path], typer.Option(
    "--keyring", metavar="DIR", help="A keyring (privspeech keyring init) or its recipients view: one key per "
    "retention epoch, chosen by each record's expires_at.", file_okay=False)]
Identities = Annotated[Optional[list[Path]], typer.Option(
    "--identity", "-i", metavar="FILE", help="Identity file (age, passphrase-protected age, or OpenSSH key); "
                                             "repeatable.", dir_okay=False)]


def read_passphrase(env, fd: int | None, file: Path | None, *, confirm: bool = False, remote: bool = False):
    """The passphrase from --passphrase-fd, --passphrase-file, or else a function that prompts on the terminal.
    For a cluster (`remote`), a reference the workers read --passphrase-file through, or None without one: a
    prompt or a descriptor of this process cannot reach them."""
    from ..crypto import passphrase

    if fd is not None and file is not None:
        raise UsageError("--passphrase-fd and --passphrase-file exclude each other")
    if fd is not None and remote:
        raise UsageError("--passphrase-fd cannot reach the workers of --scheduler",
                         hint="give --passphrase-file PATH on the filesystem the workers share")
    if fd is not None:
        return passphrase.read_fd(fd)
    if file is not None:
        return runs.secret(passphrase.read_file, str(file), env, remote=remote)
    return None if remote else lambda: passphrase.prompt(confirm=confirm)


def read_identities(env, paths: list[Path], secret, *, remote: bool):
    """The identities in the -i files (`secret`: their passphrase, if one is protected), or for a cluster a
    reference the workers read them through."""
    from ..crypto import identities

    return runs.secret(identities.load_identities, tuple(map(str, paths)), env, remote=remote, passphrase=secret)


@command
@record_stage(jobs=AgeJobs)
def encrypt(
    env: Env,
    run: RunOptions,
    paths: Inputs = None,
    recipient: Annotated[Optional[list[str]], typer.Option(
        "--recipient", "-r", metavar="RECIPIENT",
        help="Encrypt to age1..., ssh-ed25519 or ssh-rsa; repeatable.")] = None,
    recipients_file: Annotated[Optional[list[Path]], typer.Option(
        "--recipients-file", "-R", metavar="FILE", help="Encrypt to every recipient in FILE (one per line, "
                                                        "# comments); repeatable.", dir_okay=False)] = None,
    armor: Annotated[bool, typer.Option("--armor", "-a", help="Write ASCII-armored (PEM-like) text.")] = False,
    passphrase: Passphrase = False,
    passphrase_fd: PassphraseFd = None,
    passphrase_file: PassphraseFile = None,
    remove_source: Annotated[bool, typer.Option(
        "--remove-source", help="Delete each plaintext input after its ciphertext is complete, fsynced, decrypted "
        "back to the same bytes (needs -i, or -p) and journaled; only regular audio files inside the folders "
        "given, the files named or the manifest's own folder, never with -o -.")] = False,
    source_root: Annotated[Optional[list[Path]], typer.Option(
        "--source-root", metavar="DIR", file_okay=False,
        help="With --remove-source, also allow removing sources inside DIR (repeatable; needed for a manifest "
             "piped into stdin).")] = None,
    verify: Annotated[bool, typer.Option(
        "--verify", help="Decrypt each ciphertext once (with -i, or -p) and compare it with the source before "
                         "publishing it.")] = False,
    identity: Identities = None,
    keyring: Keyring = None,
    keyring_default_epoch: Annotated[Optional[str], typer.Option(
        "--keyring-default-epoch", metavar="EPOCH", help="With --keyring, the epoch (its start date, e.g. 2027-01-01) "
        "for records without expires_at, which are refused otherwise.", show_default=False)] = None,
):
    """Encrypt recordings in the age format; outputs get `.age` and records point at them.

    Outputs stream through rage in 64 KiB chunks (flat memory for any size) and appear atomically. Each record
    gains the ciphertext's sha256 and an ops entry with the format and the number of recipients (never who).

    With --remove-source each source is deleted only after its ciphertext has been decrypted back to the same
    bytes, published, fsynced and (with --out-dir) journaled, and only if it is still the file that was read:
    a rerun after a crash prints the records of sources already removed and finishes removals left undone.
    A manifest's word is taken only when nobody but you or root can write the manifest.

    With --keyring each record is encrypted to the key of the keyring epoch that is the first to end at or after
    its expires_at (plus any -r/-R recipients, e.g. an escrow key, named in the record's ops with the epoch), so
    that prune --keyring destroying that key makes every copy unreadable. A recipients view is enough.

    Example: privspeech scan calls/ | privspeech encrypt -R team.recipients --out-dir vault/ > vault/manifest.jsonl
    """
    from ..crypto import recipients
    from ..inputs import collect
    from ..journal import consumed_sources
    from ..removal import SourceRemover
    from ..stages import Stage
    from ..stages.crypto import ENCRYPTED, EncryptSettings, encrypt_record

    cluster = runs.cluster(run)
    remote = cluster is not None
    if remove_source and remote:
        raise UsageError("--remove-source runs on this machine only: it must see that the file a worker "
                         "read is the one it removes", hint="run encrypt --remove-source without "
                         "--scheduler")
    if keyring_default_epoch and not keyring:
        raise UsageError("--keyring-default-epoch applies with --keyring only")
    ring = None
    if keyring is not None:
        from ..crypto.keyring import Keyring as Ring

        if passphrase:
            raise UsageError("--keyring excludes -p", hint="a keyring encrypts to its epoch keys")
        ring = Ring.open(keyring)
        if keyring_default_epoch:
            ring.period.named(keyring_default_epoch)
    if (verify or remove_source) and not (identity or passphrase or (ring is not None and ring.full)):
        option = "--remove-source" if remove_source else "--verify"
        raise UsageError(f"{option} decrypts each ciphertext back before trusting it: give the identity "
                         "to decrypt with", hint="add -i FILE")
    if remove_source and run.output == "-":
        raise UsageError("--remove-source with -o -: a ciphertext on stdout is not kept, so the source "
                         "must stay", hint="write the ciphertext to a file")
    if source_root and not remove_source:
        raise UsageError("--source-root applies with --remove-source only")
    secret = None
    found = recipients.Recipients()
    if passphrase:
        if recipient or recipients_file:
            raise UsageError("-p excludes -r and -R")
        secret = read_passphrase(env, passphrase_fd, passphrase_file, confirm=True, remote=remote)
        if secret is None:
            raise UsageError("-p with --scheduler needs --passphrase-file: a prompt cannot reach the "
                             "workers", hint="give --passphrase-file PATH on the filesystem the workers "
                             "share")
        if not remote and callable(secret):
            secret = secret()
    elif ring is None or recipient or recipients_file:
        found = recipients.collect(recipient or [], recipients_file or [])
    verify_with = []
    if identity and (verify or remove_source) and not passphrase:
        verify_with = read_identities(env, identity, read_passphrase(env, passphrase_fd, passphrase_file,
                                                                     remote=remote), remote=remote)
    remover = None
    if remove_source:
        remover = SourceRemover(source_root or [])
        _check_manifests_trusted(paths or [], source_root)
    settings = EncryptSettings(recipients=found, passphrase=secret, armor=armor, verify=verify,
                               verify_with=verify_with, remove_source=remove_source, keyring=ring,
                               default_epoch=keyring_default_epoch)
    consumed = consumed_sources(run.out_dir) if remove_source and run.out_dir is not None else set()
    items = collect(paths or [], env, skip_invalid=run.skip_invalid, consumed=consumed)
    stage = Stage("encrypt", encrypt_record, settings, naming=ENCRYPTED, io_bound=True, remover=remover)
    return runs.run(stage, env, run, items, cluster=cluster)


def _check_manifests_trusted(paths: list[str], source_root) -> None:
    """--remove-source deletes on a manifest's word only when nobody but this user or root could have written it;
    a manifest on a pipe has no folder of its own, so its sources need --source-root."""
    import os
    import sys

    from ..inputs import MANIFEST_SUFFIXES, stdin_folder
    from ..trust import distrust

    manifests = [p for p in paths if p != "-" and os.path.isfile(p) and Path(p).suffix.lower() in MANIFEST_SUFFIXES]
    if not paths or "-" in paths:
        folder = stdin_folder()
        if folder is not None:
            manifests.append(os.readlink(f"/proc/self/fd/{sys.stdin.fileno()}"))
        elif not source_root and not sys.stdin.isatty():
            raise UsageError(
                "--remove-source with a manifest (or audio) on a pipe: the input has no folder its sources may be "
                "removed from", hint="name the folder with --source-root DIR")
    for manifest in manifests:
        why = distrust(manifest)
        if why is not None:
            raise NotPermitted(f"refusing to remove sources on the word of {manifest}: {why}",
                               hint="only a manifest that nobody but you or root can write may name files "
                                    "to delete")
