"""`privspeech init`: mark a folder as a dataset privspeech manages (and may prune)."""

from pathlib import Path
from typing import Annotated

import typer

from ..console import Env
from .command import command


@command
def init(
    env: Env,
    root: Annotated[Path, typer.Argument(help="The folder to mark (created if missing).", show_default=False)],
):
    """Mark a folder as managed by privspeech, so that `privspeech prune` may act inside it.

    Writes ROOT/.privspeech/root.json (idempotent). prune refuses folders without this marker.

    Example: privspeech init /srv/calls
    """
    from ..managed import mark

    state = mark(root)
    env.info(f"init: {root} is managed by privspeech ({state})")
    return 0
