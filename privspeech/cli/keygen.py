"""`privspeech keygen`: create an age X25519 identity file (or, with --anon, a privspeech secret key)."""

import os
import stat
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..console import Env
from ..errors import CannotWrite, UsageError
from .command import command
from .encrypt import PassphraseFd, PassphraseFile, read_passphrase


@command
def keygen(
    env: Env,
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", metavar="FILE", help="The key file to create (mode 0600; never overwritten); without it, "
        "or with '-', the key goes to stdout as age-keygen does (refused into a file others can read).",
        dir_okay=False, show_default=False)] = None,
    passphrase: Annotated[bool, typer.Option(
        "--passphrase", "-p", help="Protect the identity file with a passphrase (scrypt, as age -p does), asked on "
             "the terminal or read from --passphrase-fd/--passphrase-file; never taken from the command line.",
    )] = False,
    passphrase_fd: PassphraseFd = None,
    passphrase_file: PassphraseFile = None,
    anon: Annotated[bool, typer.Option(
        "--anon", help="Write a privspeech secret key for keyed anonymization and pseudonyms instead.")] = False,
):
    """Create an identity file as age-keygen does and print its recipient (age1...) on stdout.

    Without -o the identity itself goes to stdout and its recipient to stderr ("Public key: age1..."), as with
    age-keygen.

    Example: privspeech keygen -o me.key > me.pub; privspeech encrypt -R me.pub rec.wav -o rec.wav.age
    """

    to_stdout = output is None or str(output) == "-"
    if to_stdout:
        _check_stdout_private()
    elif os.path.lexists(output):
        raise CannotWrite(f"{output}: already exists; keygen never overwrites a key file",
                          hint="choose another name; the old key may still be needed to decrypt")
    if anon:
        if passphrase or passphrase_fd is not None or passphrase_file is not None:
            raise UsageError("--anon key files take no passphrase")
        from .. import keys

        key = keys.generate()
        if to_stdout:
            typer.echo(keys.serialize(key).decode("ascii"), nl=False)
        else:
            keys.write_key_file(output, key)
            env.info(f"wrote {output} (fingerprint {key.fingerprint}); keep it private")
        return 0
    from ..crypto import identities

    secret = None
    if passphrase or passphrase_fd is not None or passphrase_file is not None:
        secret = read_passphrase(env, passphrase_fd, passphrase_file, confirm=True)
    if to_stdout:
        identity = identities.generate()
        data = identities.identity_text(identity)
        typer.echo((identities.protect(data, secret) if secret is not None else data).decode("ascii"), nl=False)
        env.info(f"Public key: {identities.recipient(identity)}")
        return 0
    typer.echo(identities.write_identity_file(output, passphrase=secret))
    return 0


def _check_stdout_private() -> None:
    """Refuse to put a secret key into a regular file that group or others can read (a shell redirect under the
    usual umask creates one)."""
    try:
        mode = os.fstat(sys.stdout.fileno()).st_mode
    except (AttributeError, OSError, ValueError):  # not a real file descriptor
        return
    if stat.S_ISREG(mode) and mode & 0o077:
        raise CannotWrite("refusing to write a secret key into a file that others can read",
                          hint="use -o FILE (created 0600), or run under umask 077")
