"""`privspeech keygen`: create an age X25519 identity file (or, with --anon, a privspeech secret key)."""

from pathlib import Path
from typing import Annotated

import typer

from . import common
from .encrypt import PassphraseFd, PassphraseFile, read_passphrase


@common.handles_errors
def keygen(
    output: Annotated[Path, typer.Option(
        "--output", "-o", metavar="FILE", help="The key file to create (mode 0600; never overwritten).",
        dir_okay=False)],
    passphrase: Annotated[bool, typer.Option(
        "--passphrase", "-p", help="Protect the identity file with a passphrase (scrypt, as age -p does), asked on "
             "the terminal or read from --passphrase-fd/--passphrase-file; never taken from the command line.",
    )] = False,
    passphrase_fd: PassphraseFd = None,
    passphrase_file: PassphraseFile = None,
    anon: Annotated[bool, typer.Option(
        "--anon", help="Write a privspeech secret key for keyed anonymization and pseudonyms instead.")] = False,
    quiet: common.Quiet = False,
):
    """Create an identity file as age-keygen does and print its recipient (age1...) on stdout.

    Example: privspeech keygen -o me.key > me.pub; privspeech encrypt -R me.pub rec.wav -o rec.wav.age
    """
    from ..console import Env

    env = Env(quiet=quiet)
    if str(output) == "-":
        raise common.PrivspeechError("refusing to write a secret key to stdout", hint="give -o FILE",
                                     status=common.ExitStatus.USAGE)
    if anon:
        if passphrase or passphrase_fd is not None or passphrase_file is not None:
            raise common.PrivspeechError("--anon key files take no passphrase", status=common.ExitStatus.USAGE)
        from .. import keys

        key = keys.generate()
        keys.write_key_file(output, key)
        env.info(f"wrote {output} (fingerprint {key.fingerprint}); keep it private")
        return 0
    from ..crypto import identities

    secret = None
    if passphrase or passphrase_fd is not None or passphrase_file is not None:
        secret = read_passphrase(env, passphrase_fd, passphrase_file, confirm=True)
    recipient = identities.write_identity_file(output, passphrase=secret)
    typer.echo(recipient)
    return 0
