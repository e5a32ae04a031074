"""Where a stage's records come from: files and folders given as arguments, manifests, or stdin."""

from __future__ import annotations

import io
import os
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Collection, Iterable, Iterator

from .console import Env
from .managed import AUDIO_SUFFIXES
from .errors import DataError, from_os_error, NotFound, UsageError
from .fsutil import STDIO
from .manifest import Record, read_jsonl

MANIFEST_SUFFIXES = frozenset({".jsonl", ".json"})
AUDIO_MAGIC = (b"RIFF", b"RIFX", b"RF64", b"fLaC", b"OggS", b"FORM", b".snd", b"caff", b"NIST")


@dataclass
class Item:
    """One unit of work: a record, the relative name (no suffix) its outputs mirror under --out-dir, and the root
    it was found under (the folder given, the file named, the manifest's own folder; None for a pipe)."""

    index: int
    record: Record
    rel: str
    root: str | None = None


@dataclass
class WalkStats:
    """What a walk passed over, reported on stderr."""

    hidden: int = 0
    not_audio: int = 0
    symlinks: int = 0
    special: int = 0
    items: int = 0
    roots_without_audio: list[str] = field(default_factory=list)

    def summary(self) -> str | None:
        parts = [f"{n} {what}" for n, what in ((self.hidden, "hidden"), (self.not_audio, "non-audio"),
                                                 (self.symlinks, "symlinked"), (self.special, "special"))
                 if n]
        return "skipped " + ", ".join(parts) + " files" if parts else None


def is_audio_magic(head: bytes) -> bool:
    """True when `head` starts like a container libsndfile reads (used to tell audio from a manifest on stdin)."""
    return head[:4] in AUDIO_MAGIC


def safe_rel(name: str) -> str | None:
    """`name` as a relative POSIX path that cannot escape a folder, or None."""
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if not parts or name.startswith("/") or any(p in ("..", ".", "") for p in parts):
        return None
    return "/".join(parts)


def collect(args: Iterable[str], env: Env, *, skip_invalid: bool = False, follow_symlinks: bool = False,
            stats: WalkStats | None = None, consumed: Collection[str] = ()) -> Iterator[Item]:
    """Yield work items in a stable order from arguments, or from stdin when there are none (or '-').

    A folder is walked for audio files (sorted, hidden files skipped, symlinks followed only when asked);
    a `.jsonl` file or stdin that is not audio is read as a manifest; audio bytes on stdin are one record
    with path '-'. Missing arguments raise NOINPUT before any work starts. Inputs that an earlier run consumed
    (absolute paths in `consumed`: encrypt --remove-source removed them) keep their place although they are
    gone, so a rerun prints their records.
    """
    args = list(args)
    stats = stats if stats is not None else WalkStats()
    gone = _by_folder(consumed)
    if not args:
        if env.stdin_is_tty:
            raise UsageError("no input", hint="give files or folders, or pipe a manifest or audio into stdin")
        args = [STDIO]
    for arg in args:
        if arg != STDIO and not os.path.lexists(arg) and os.path.abspath(arg) not in consumed:
            raise NotFound(f"{arg}: no such file or folder", hint="check the path")
    index = 0
    for arg in args:
        for record, rel, root in _expand(arg, env, skip_invalid, follow_symlinks, stats, gone):
            stats.items += 1
            yield Item(index, record, rel, root)
            index += 1


def _by_folder(paths: Collection[str]) -> dict[str, set[str]]:
    """Absolute paths grouped by folder: {folder: {names}}."""
    grouped: dict[str, set[str]] = {}
    for path in paths:
        folder, name = os.path.split(path)
        grouped.setdefault(folder, set()).add(name)
    return grouped


def _expand(arg: str, env: Env, skip_invalid: bool, follow: bool, stats: WalkStats, gone: dict[str, set[str]]):
    if arg == STDIO:
        folder = stdin_folder()
        for record, rel in _from_stdin(env, skip_invalid):
            yield record, rel, str(folder) if folder is not None and record.audio_filepath != STDIO else None
        return
    if not os.path.lexists(arg):  # consumed by an earlier run
        yield Record(audio_filepath=arg, id=Path(arg).stem), Path(arg).stem, arg
        return
    try:
        st = os.stat(arg) if follow or not os.path.islink(arg) else os.lstat(arg)
    except OSError as exc:
        raise from_os_error(exc, arg) from None
    if stat.S_ISDIR(st.st_mode):
        found = 0
        for record, rel in _walk(arg, follow, stats, gone):
            found += 1
            yield record, rel, arg
        if not found:
            stats.roots_without_audio.append(arg)
    elif Path(arg).suffix.lower() in MANIFEST_SUFFIXES:
        folder = str(Path(arg).parent)
        for record, rel in _from_manifest_file(Path(arg), env, skip_invalid):
            yield record, rel, folder
    else:  # a file named explicitly is taken even without an audio suffix; decoding will judge it
        yield Record(audio_filepath=arg, id=Path(arg).stem), Path(arg).stem, arg


def _walk(root: str | os.PathLike, follow: bool, stats: WalkStats, gone: dict[str, set[str]],
          prefix: str = "") -> Iterator[tuple[Record, str]]:
    """Audio files under `root`, top-down and sorted; each directory is listed once (cached entry types). Names
    in `gone` for this folder that it no longer holds are yielded in their place."""
    try:
        with os.scandir(root) as it:
            entries: list = sorted(it, key=lambda e: e.name)
    except OSError as exc:
        raise from_os_error(exc, exc.filename or str(root)) from None
    missing = gone.get(os.path.abspath(root), set()) - {e.name for e in entries}
    if missing:
        entries = sorted(entries + [_Gone(os.path.join(root, name), name) for name in missing],
                         key=lambda e: e.name)
    folders = []
    for entry in entries:
        name = entry.name
        if name.startswith("."):
            stats.hidden += not _is_dir(entry, True)  # hidden folders are passed over uncounted
            continue
        if not follow and entry.is_symlink():
            stats.symlinks += 1
            continue
        if _is_dir(entry, follow):
            folders.append(entry)
            continue
        suffix = os.path.splitext(name)[1]
        if suffix.lower() not in AUDIO_SUFFIXES:
            stats.not_audio += 1
            continue
        if not _is_file(entry):
            stats.special += 1
            continue
        stem = prefix + name[:-len(suffix)]
        yield Record(audio_filepath=entry.path, id=stem), stem
    for entry in folders:
        yield from _walk(entry.path, follow, stats, gone, prefix + entry.name + "/")


@dataclass(frozen=True)
class _Gone:
    """A walk entry for a consumed input that is no longer there: a regular file, as it was."""

    path: str
    name: str

    def is_symlink(self) -> bool:
        return False

    def is_dir(self, follow_symlinks: bool = True) -> bool:
        return False

    def is_file(self, follow_symlinks: bool = True) -> bool:
        return True


def _is_dir(entry: os.DirEntry, follow: bool) -> bool:
    try:
        return entry.is_dir(follow_symlinks=follow)
    except OSError:
        return False


def _is_file(entry: os.DirEntry) -> bool:
    try:
        return entry.is_file()
    except OSError:
        return False


def _from_manifest_file(path: Path, env: Env, skip_invalid: bool):
    try:
        fh = open(path, encoding="utf-8")
    except OSError as exc:
        raise from_os_error(exc, str(path)) from None
    with fh:
        yield from _records(read_jsonl(_checked_text(fh, str(path)), base_dir=path.parent, name=str(path),
                                       skip_invalid=skip_invalid, warn=env.warn))


def _from_stdin(env: Env, skip_invalid: bool):
    head = _peek(getattr(env.stdin, "buffer", None))
    if is_audio_magic(head):
        yield Record(audio_filepath=STDIO, id="stdin"), "stdin"
        return
    yield from _records(read_jsonl(_checked_text(env.stdin, "<stdin>"), base_dir=stdin_folder(), name="<stdin>",
                                   skip_invalid=skip_invalid, warn=env.warn))


def _peek(buffer) -> bytes:
    """The first bytes of a binary stream without consuming them."""
    if buffer is None:
        return b""
    if hasattr(buffer, "peek"):
        return buffer.peek(64)[:64]
    if buffer.seekable():
        where = buffer.tell()
        head = buffer.read(64)
        buffer.seek(where)
        return head
    return b""


def _checked_text(stream, name: str):
    """Lines of a text stream, turning undecodable bytes into a DATAERR naming the input."""
    try:
        yield from stream
    except UnicodeDecodeError:
        raise DataError(f"{name}: not a UTF-8 JSONL manifest",
                        hint="pass audio files as arguments, or pipe a manifest") \
            from None


def _records(records: Iterable[Record]):
    for record in records:
        rel = safe_rel(record.id) if record.id else None
        yield record, rel or Path(record.audio_filepath).stem


def _fd_folder(fd: int) -> Path | None:
    """The folder of the regular file open on `fd` (Linux /proc), or None for pipes and terminals."""
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        target = os.readlink(f"/proc/self/fd/{fd}")
    except (OSError, ValueError, io.UnsupportedOperation):
        return None
    return Path(target).parent if target.startswith("/") else None


def stdin_folder() -> Path | None:
    """Base folder for relative paths of a manifest on stdin: its file's folder when redirected from a file."""
    try:
        return _fd_folder(sys.stdin.fileno())
    except (AttributeError, ValueError, io.UnsupportedOperation):
        return None


def stdout_folder() -> Path | None:
    """Base folder for paths written to stdout: the folder of the file stdout is redirected to, if any."""
    try:
        return _fd_folder(sys.stdout.fileno())
    except (AttributeError, ValueError, io.UnsupportedOperation):
        return None
