"""`privspeech keyring`: epoch keys for crypto-erasure (init, extend, list)."""

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..console import Env
from .command import command
from .encrypt import PassphraseFd, PassphraseFile
from .options import Inputs, SkipInvalid

app = typer.Typer(
    name="keyring", no_args_is_help=True, context_settings={"help_option_names": ["-h", "--help"]},
    help="Epoch keys for crypto-erasure: one age key per retention period; `encrypt --keyring` encrypts each "
         "record to the epoch its expiry falls in, `prune --keyring` destroys the keys of ended epochs, and every "
         "copy of what they encrypted (backups included) becomes unreadable.")

Folder = Annotated[Path, typer.Argument(help="The keyring folder.", metavar="DIR", show_default=False)]
UNTIL_HELP = ("the keys of every epoch from now until WHEN: a date, an RFC 3339 timestamp or a time from now (1y, "
              "3mo, 400d), for machines that encrypt with the recipients view only.")
Until = Annotated[Optional[str], typer.Option("--until", metavar="WHEN", help=f"Also create {UNTIL_HELP}",
                                              show_default=False)]
Passphrase = Annotated[bool, typer.Option(
    "--passphrase", "-p", help="Protect every epoch key with a passphrase (scrypt, as keygen -p does): prompted, or "
    "read from --passphrase-fd/--passphrase-file. New keys are then made only by keyring extend.")]


@app.command("init")
@command
def init(
    env: Env,
    folder: Folder,
    period: Annotated[str, typer.Option(
        "--period", metavar="1d|1w|1mo|1y", help="The length of an epoch: a whole number of days (d), weeks (w), "
        "months (mo) or years (y), in UTC.", show_default=False)] = ...,
    until: Until = None,
    passphrase: Passphrase = False,
    passphrase_fd: PassphraseFd = None,
    passphrase_file: PassphraseFile = None,
):
    """Create a keyring folder (0700) with a recipients view for machines that only encrypt.

    Keys are made per epoch on first use (with --passphrase, by keyring extend), 0600 and never overwritten.
    Copy DIR/recipients/ to the machines that ingest: they encrypt with it and can never decrypt.

    Example: privspeech keyring init /srv/keys --period 1mo --until 1y
    """
    from ..crypto.epochs import Period
    from ..crypto.keyring import Keyring

    keyring = Keyring.init(folder, Period.parse(period), protected=passphrase)
    env.info(f"keyring: {folder} is a {keyring.describe()}; its recipients view is {folder / 'recipients'}")
    if until is not None:
        _extend(env, keyring, until, passphrase_fd, passphrase_file)
    return 0


@app.command("extend")
@command
def extend(
    env: Env,
    folder: Folder,
    until: Annotated[str, typer.Option("--until", metavar="WHEN", help=f"Create {UNTIL_HELP}",
                                       show_default=False)] = ...,
    passphrase_fd: PassphraseFd = None,
    passphrase_file: PassphraseFile = None,
):
    """Create the epoch keys (and recipients) from now until a date, as ingest machines need them ahead.

    Example: privspeech keyring extend /srv/keys --until 1y && rsync -a /srv/keys/recipients/ ingest:/etc/keys/
    """
    from ..crypto.keyring import Keyring

    _extend(env, Keyring.open(folder), until, passphrase_fd, passphrase_file)
    return 0


@app.command("list")
@command
def list_epochs(
    env: Env,
    folder: Folder,
    manifests: Inputs = None,
    skip_invalid: SkipInvalid = False,
):
    """Print one JSON line per epoch: its dates, key state (active, expired, destroyed) and, given manifests, how
    many of their records are encrypted under it.

    Example: privspeech keyring list /srv/keys vault/manifest.jsonl
    """
    import json
    from collections import Counter

    from ..crypto.keyring import Keyring, epoch_of_record
    from ..inputs import collect
    from ..timeutil import format_ts

    keyring = Keyring.open(folder)
    counts: Counter = Counter()
    if manifests:
        for item in collect(manifests, env, skip_invalid=skip_invalid):
            counts[epoch_of_record(item.record, keyring)] += 1
    for known in keyring.epochs():
        line = {"epoch": known.epoch.id, "start": format_ts(known.epoch.start), "end": format_ts(known.epoch.end),
                "state": known.state, "destroyed_at": known.destroyed_at}
        if manifests:
            line["records"] = counts.get(known.epoch.id, 0)
        env.stdout.write(json.dumps(line) + "\n")
    env.stdout.flush()
    return 0


def _extend(env, keyring, until, passphrase_fd, passphrase_file):
    """Create the keys from now until `until`."""
    from ..crypto.epochs import parse_until
    from ..timeutil import now
    from .encrypt import read_passphrase

    secret = None
    if keyring.protected:
        secret = read_passphrase(env, passphrase_fd, passphrase_file, confirm=True)
        secret = secret() if callable(secret) else secret
    start = now()
    epochs = keyring.period.through(start, parse_until(until, start))
    for epoch in epochs:
        keyring.create(epoch, secret)
    env.info(f"keyring: keys ready for {len(epochs)} epoch(s), {epochs[0].id} to {epochs[-1].id}")
