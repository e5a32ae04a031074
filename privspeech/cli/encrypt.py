"""`privspeech encrypt`: age-format encryption of recordings (files anyone can open with `age -d`)."""

from pathlib import Path
from typing import Annotated, Optional

import typer

from . import common

Passphrase = Annotated[bool, typer.Option(
    "--passphrase", "-p", help="Encrypt with a passphrase (scrypt) instead of recipients: in memory, files up to "
                               "64 MiB, and each file costs about a second of scrypt.")]
PassphraseFd = Annotated[Optional[int], typer.Option(
    "--passphrase-fd", metavar="N", help="Read the passphrase from file descriptor N (first line).")]
PassphraseFile = Annotated[Optional[Path], typer.Option(
    "--passphrase-file", metavar="PATH", help="Read the passphrase from the first line of PATH.", dir_okay=False)]
Identities = Annotated[Optional[list[Path]], typer.Option(
    "--identity", "-i", metavar="FILE", help="Identity file (age, passphrase-protected age, or OpenSSH key); "
                                             "repeatable.", dir_okay=False)]


def read_passphrase(env, fd: int | None, file: Path | None, *, confirm: bool = False):
    """The passphrase from --passphrase-fd, --passphrase-file, or else a function that prompts on the terminal."""
    from ..crypto import passphrase

    if fd is not None and file is not None:
        raise common.PrivspeechError("--passphrase-fd and --passphrase-file exclude each other",
                                     status=common.ExitStatus.USAGE)
    if fd is not None:
        return passphrase.read_fd(fd)
    if file is not None:
        value, warnings = passphrase.read_file(file)
        for message in warnings:
            env.warn(message)
        return value
    return lambda: passphrase.prompt(confirm=confirm)


@common.handles_errors
def encrypt(
    paths: common.Inputs = None,
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
        "--remove-source", help="Delete each plaintext input once its ciphertext is complete (and verified).")] = False,
    verify: Annotated[bool, typer.Option(
        "--verify", help="Decrypt each output once with -i before trusting it (and before --remove-source).")] = False,
    identity: Identities = None,
    out_dir: common.OutDir = None,
    output: common.Output = None,
    force: common.Force = False,
    emit_manifest: common.EmitManifest = False,
    jobs: common.Jobs = None,
    fail_fast: common.FailFast = False,
    skip_invalid: common.SkipInvalid = False,
    shard: common.Shard = None,
    quiet: common.Quiet = False,
):
    """Encrypt recordings in the age format; outputs get `.age` and records point at them.

    Outputs stream through rage in 64 KiB chunks (flat memory for any size) and appear atomically. Each record
    gains the ciphertext's sha256 and an ops entry with the format and the number of recipients (never who).

    Example: privspeech scan calls/ | privspeech encrypt -R team.recipients --out-dir vault/ > vault/manifest.jsonl
    """
    import functools

    from ..console import Env
    from ..crypto import identities, recipients
    from ..crypto.stage import EncryptSettings, encrypt_record, keep_names
    from ..inputs import collect
    from ..pipeline import Stage

    env = Env(quiet=quiet)
    if verify and not identity:
        raise common.PrivspeechError("--verify needs the identity to decrypt with", hint="add -i FILE",
                                     status=common.ExitStatus.USAGE)
    secret = None
    found = []
    if passphrase:
        if recipient or recipients_file:
            raise common.PrivspeechError("-p excludes -r and -R", status=common.ExitStatus.USAGE)
        secret = read_passphrase(env, passphrase_fd, passphrase_file, confirm=True)
        secret = secret() if callable(secret) else secret
    else:
        found = recipients.collect(recipient or [], recipients_file or [])
    verify_with = []
    if verify:
        verify_with, warnings = identities.load_identities(
            identity, passphrase=read_passphrase(env, passphrase_fd if not passphrase else None, passphrase_file
                                                 if not passphrase else None))
        for message in warnings:
            env.warn(message)
    settings = EncryptSettings(recipients=found, passphrase=secret, armor=armor, verify_with=verify_with,
                               remove_source=remove_source)
    params = {"recipients": sorted(recipient or []), "recipients_files": sorted(map(str, recipients_file or [])),
              "armor": armor, "passphrase": passphrase}
    items = keep_names(collect(paths or [], env, skip_invalid=skip_invalid), strip_age=False)
    stage = Stage("encrypt", functools.partial(encrypt_record, settings=settings), params=params, suffix=".age",
                  io_bound=True)
    return common.run(stage, paths, out_dir=out_dir, output=output, force=force, jobs=jobs, fail_fast=fail_fast,
                      quiet=quiet, shard=shard, emit_manifest=emit_manifest, items=items)
