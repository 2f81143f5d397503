"""What makes a file a golden: its name's suffix (a module of its own, with nothing to
import: pytest asks the plugin about every file it collects, also in runs that collect
no golden)."""

from __future__ import annotations

import os
from typing import Union

GOLDEN_SUFFIXES = (".golden.yaml", ".golden.yml", ".golden.json")

StrPath = Union[str, "os.PathLike[str]"]


def is_golden_path(path: StrPath) -> bool:
    """True when the file name ends in one of `GOLDEN_SUFFIXES`."""
    name = os.path.basename(os.fspath(path))
    return any(name.endswith(suffix) and len(name) > len(suffix) for suffix in GOLDEN_SUFFIXES)
