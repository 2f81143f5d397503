"""argparse types shared by the `opswald` command line and the pytest plugin's options
(a module of its own: the plugin's options are registered on every pytest run, and must
not load the rest of opswald to do it)."""

from __future__ import annotations

import argparse


def milliseconds_arg(raw: str) -> float:
    """An argparse type: a duration in milliseconds, not negative (opswald analyze and
    opswald html --slow-ms, pytest's --opswald-slow-ms)."""
    try:
        value = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a number") from None
    if value != value:  # NaN compares unequal to itself: no step is slower, nor faster
        raise argparse.ArgumentTypeError(f"{raw!r} is not a number: give 0 or more milliseconds")
    if value < 0:
        raise argparse.ArgumentTypeError(f"{raw!r} is negative: give 0 or more milliseconds")
    return value


def positive_int(raw: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{raw!r}: must be at least 1")
    return value
