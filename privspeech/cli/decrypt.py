"""`privspeech decrypt`: open age files with identities or a passphrase, all or nothing."""

import dataclasses
import itertools
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..console import Env
from ..errors import UsageError, WrongKey
from . import run as runs
from .command import command
from .options import AgeJobs, Inputs, RunOptions, record_stage
from .encrypt import Identities, PassphraseFd, PassphraseFile, read_identities, read_passphrase


@command
@record_stage(jobs=AgeJobs)
def decrypt(
    env: Env,
    run: RunOptions,
    paths: Inputs = None,
    identity: Identities = None,
    decrypt_flag: Annotated[bool, typer.Option(
        "--decrypt", "-d", help="Accepted for age's habit (age -d); this command always decrypts.")] = False,
    passphrase_fd: PassphraseFd = None,
    passphrase_file: PassphraseFile = None,
    keyring: Annotated[Optional[Path], typer.Option(
        "--keyring", metavar="DIR", help="Decrypt with the epoch keys of this keyring (the epoch named by each "
        "record, else every live one); -i adds identities (e.g. an escrow key).", file_okay=False)] = None,
):
    """Decrypt age files (or folders of them, a manifest, or stdin); outputs drop `.age`.

    Plaintext files are created 0600 and appear only when every chunk has been authenticated: a wrong key
    exits 77, a corrupt or tampered file exits 65, and neither leaves plaintext behind. With -o - the plaintext
    streams to stdout chunk by chunk, each authenticated before it is written: when a later chunk is damaged or
    the file is truncated, what came before it has already been written, and the exit status is non-zero.
    Without -i the files must be passphrase-encrypted (prompt, --passphrase-fd or --passphrase-file).
    As with age, one file given without -o or --out-dir is decrypted to stdout, unless stdout is a terminal.

    Example: privspeech decrypt -i me.key vault/ --out-dir plain/ > plain/manifest.jsonl;
    privspeech decrypt -i me.key rec.wav.age | play -
    """
    from ..stages import Stage
    from ..stages.crypto import DECRYPTED, DecryptSettings, decrypt_items, decrypt_record

    cluster = runs.cluster(run)
    remote = cluster is not None
    secret = read_passphrase(env, passphrase_fd, passphrase_file, remote=remote)
    if keyring is not None:
        from ..crypto.keyring import Keyring

        ring = Keyring.open(keyring)
        if not ring.full:
            raise WrongKey(f"{keyring}: a recipients view holds no keys", hint="decrypt with the keyring itself")
        unlock = secret() if ring.protected and callable(secret) else secret if ring.protected else None
        if ring.protected and unlock is None:
            raise UsageError("a passphrase-protected keyring with --scheduler needs --passphrase-file",
                             hint="give --passphrase-file PATH on the filesystem the workers share")
        found = read_identities(env, identity, unlock, remote=remote) if identity else ()
        settings = DecryptSettings(identities=found, keyring=ring, keyring_passphrase=unlock)
    elif identity:
        settings = DecryptSettings(identities=read_identities(env, identity, secret, remote=remote))
    elif secret is None:
        raise UsageError("decrypt with --scheduler needs -i or --passphrase-file: a prompt cannot reach "
                         "the workers", hint="give -i FILE, or --passphrase-file PATH on the filesystem "
                         "the workers share")
    else:
        settings = DecryptSettings(passphrase=secret() if not remote and callable(secret) else secret)
    items = decrypt_items(paths or [], env, skip_invalid=run.skip_invalid)
    if run.output is None and run.out_dir is None:
        items, output = _one_to_stdout(items, env)
        run = dataclasses.replace(run, output=output)
    stage = Stage("decrypt", decrypt_record, settings, naming=DECRYPTED, io_bound=True)
    return runs.run(stage, env, run, items, cluster=cluster)


def _one_to_stdout(items, env):
    """As `age -d` does: when the inputs hold one file, its plaintext goes to stdout (never to a terminal)."""
    items = iter(items)
    first = list(itertools.islice(items, 2))
    if len(first) == 1:
        if env.stdout_is_tty:
            raise UsageError("no output given, and stdout is a terminal",
                             hint="redirect stdout, or give -o FILE or --out-dir DIR")
        return first, "-"
    return itertools.chain(first, items), None
