"""Where each record's output goes, and the outputs a run refuses to place."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import UsageError
from .fsutil import STDIO
from .inputs import Item
from .stages import Naming


@dataclass(frozen=True)
class Placement:
    """Where outputs go: mirrored under `out_dir`, or one `out_file` ('-' for stdout)."""

    out_dir: Path | None = None
    out_file: str | None = None
    force: bool = False
    emit_manifest: bool = True

    @property
    def record_kept(self) -> bool:
        """Whether each record goes somewhere: printed, or journaled under the out-dir."""
        return self.emit_manifest or self.out_dir is not None


class Outputs:
    """The output path of each item in one run of a stage whose files are named by `naming` (None: it writes
    none)."""

    def __init__(self, placement: Placement, naming: Naming | None):
        self.placement, self.naming = placement, naming
        self._dests: set[str] = set()

    def dest(self, item: Item) -> str | None:
        """Where `item`'s output goes; refuses (USAGE) a path this run already gave another item, and one that
        would replace the item's own input."""
        if self.naming is None:
            return None
        if self.placement.out_file is not None:
            dest = self.placement.out_file
        else:
            assert self.placement.out_dir is not None
            dest = str(self.placement.out_dir / self.naming.name(item.rel, item.record.audio_filepath))
        if dest == STDIO:
            return dest
        key = os.path.abspath(dest)
        src = item.record.audio_filepath
        if key in self._dests:
            raise UsageError(f"{src}: output {dest} would be written twice",
                             hint="two inputs share a name; give them distinct ids")
        self._dests.add(key)
        if os.path.abspath(src) == key:
            raise UsageError(f"{dest}: output would replace its input", hint="choose another --out-dir")
        return dest

    def make_parent(self, dest: str) -> None:
        """Create the folders an output under the out-dir goes in."""
        if self.placement.out_dir is not None:
            from .fsutil import make_dirs

            make_dirs(Path(dest).parent)
