"""What collection needs of each golden (its item name, tags and fixtures), remembered
between runs.

Collecting a golden means reading, parsing and validating it: a malformed golden is one
collection error naming the file. A golden that was valid when last collected and has not
changed since (same size and modification time to the nanosecond, the test Python's own
bytecode cache relies on) is still valid, so a warm run only stats it and parses it when
its item runs. A golden of the same size with another modification time (a fresh checkout,
a `touch`, a branch switched there and back) is read and compared by content digest: the
same bytes count as unchanged, and the entry takes the new time. Deselected goldens (`-k`,
`-m`, `--deselect`) and `--collect-only` are then never parsed, and an xdist worker parses
only the goldens it runs.

The index lives in pytest's cache (`.pytest_cache/d/opswald/collected.json`), keyed by
each golden's path under the rootdir, is written
atomically by every process that collected (xdist workers hold the same entries), and is
keyed by the opswald version and the loading limits; `pytest --cache-clear` or
`-p no:cacheprovider` turns it off for a run. An entry whose golden, loaded to run, has
another name, other tags or other fixtures than remembered is dropped, so the next run
collects that file afresh; entries of goldens that no longer exist are dropped whenever the
index is written.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from opswald import __version__
from opswald.files import atomic_write_text

_KEY = pytest.StashKey["CollectIndex"]()
_FILE = "collected.json"
_FORMAT = 4  # keys: paths under the rootdir; rows: [mtime_ns, size, name, tags, digest,
# fixtures]


@dataclass(frozen=True)
class Entry:
    """A golden as collection saw it."""

    name: str
    tags: tuple[str, ...]
    fixtures: tuple[str, ...] = ()  # the golden's `fixtures:`


def digest_of(content: bytes) -> str:
    """A golden's content digest, as the index keeps it."""
    return hashlib.blake2b(content, digest_size=16).hexdigest()


def digest(golden: Path) -> str:
    return digest_of(golden.read_bytes())


@dataclass
class CollectIndex:
    """Per golden path: (mtime_ns, size) when it was collected valid, its name, tags,
    content digest and fixtures."""

    path: Path | None  # the index file, None when pytest's cache is off
    fingerprint: str
    root: str = ""  # the rootdir: goldens under it are keyed by their path relative to it
    entries: dict[str, list[Any]] = field(default_factory=dict)
    dirty: bool = False

    def key(self, golden: Path) -> str:
        """The golden's key: its path under the rootdir (so a checkout elsewhere with the
        cache restored still finds it), or its absolute path outside it."""
        text = os.fspath(golden)
        prefix = self.root + os.sep
        return text[len(prefix) :] if self.root and text.startswith(prefix) else text

    def lookup(self, golden: Path, stat: os.stat_result) -> Entry | None:
        row = self.entries.get(self.key(golden))
        if row is None or row[1] != stat.st_size:
            return None
        if row[0] != stat.st_mtime_ns:  # touched, or rewritten: same bytes?
            try:
                same = digest(golden) == row[4]
            except OSError:
                return None  # collecting it reports why it cannot be read
            if not same:
                self.forget(golden)  # changed: collected afresh, remembered again if valid
                return None
            row[0] = stat.st_mtime_ns  # a stale time can only cost a read, never a miss
            self.dirty = True
        return Entry(name=row[2], tags=tuple(row[3]), fixtures=tuple(row[5]))

    @property
    def on(self) -> bool:
        """False when pytest's cache is off: nothing is looked up or remembered."""
        return self.path is not None

    def remember(self, golden: Path, stat: os.stat_result, entry: Entry, content: str) -> None:
        """Remember a golden collected valid; `content` is the digest of the bytes that
        were parsed (a change after that read can only cost a read)."""
        row = [
            stat.st_mtime_ns,
            stat.st_size,
            entry.name,
            list(entry.tags),
            content,
            list(entry.fixtures),
        ]
        key = self.key(golden)
        if self.entries.get(key) != row:
            self.entries[key] = row
            self.dirty = True

    def forget(self, golden: Path) -> None:
        if self.entries.pop(self.key(golden), None) is not None:
            self.dirty = True

    def save(self) -> None:
        if self.path is None or not self.dirty:
            return
        # goldens deleted or moved since they were remembered are forgotten
        self.entries = {
            k: v for k, v in self.entries.items() if os.path.exists(os.path.join(self.root, k))
        }
        data = {"fingerprint": self.fingerprint, "goldens": self.entries}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.path, json.dumps(data, separators=(",", ":")))
        except OSError:  # a read-only checkout: the next run collects cold, nothing lost
            return
        self.dirty = False


def index_of(config: pytest.Config) -> CollectIndex:
    """The run's index, read from pytest's cache on first use."""
    if _KEY not in config.stash:
        config.stash[_KEY] = _read(config)
    return config.stash[_KEY]


def _read(config: pytest.Config) -> CollectIndex:
    from opswald.plugin import settings_of

    caps = settings_of(config).limits  # a golden valid under other caps is read afresh
    fingerprint = f"{_FORMAT}/{__version__}/{caps.max_bytes}/{caps.max_depth}"
    cache = getattr(config, "cache", None)
    if cache is None:
        return CollectIndex(path=None, fingerprint=fingerprint)
    try:
        path = Path(cache.mkdir("opswald")) / _FILE
    except OSError:
        return CollectIndex(path=None, fingerprint=fingerprint)
    index = CollectIndex(path=path, fingerprint=fingerprint, root=os.fspath(config.rootpath))
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return index
    if isinstance(data, dict) and data.get("fingerprint") == fingerprint:
        goldens = data.get("goldens")
        if isinstance(goldens, dict):
            index.entries = {
                k: v
                for k, v in goldens.items()
                if isinstance(v, list)
                and len(v) == 6
                and isinstance(v[0], int)
                and isinstance(v[1], int)
                and isinstance(v[2], str)
                and isinstance(v[3], list)
                and isinstance(v[4], str)
                and isinstance(v[5], list)
            }
    return index


def save(config: pytest.Config) -> None:
    if _KEY in config.stash:
        config.stash[_KEY].save()
