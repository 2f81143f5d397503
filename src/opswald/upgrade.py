"""`opswald upgrade`: migrate goldens written under older schema versions.

Schema v1 is the first published version, so `MIGRATIONS` is empty today; each later
version adds one function from version n to n+1 working on plain data, and every golden
is carried forward through the chain, then validated against the current schema.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opswald.session import SCHEMA_VERSION, Session, newer_schema_message

Migration = Callable[[dict[str, Any]], dict[str, Any]]
MIGRATIONS: dict[int, Migration] = {}  # from schema_version n to n + 1


class UpgradeError(ValueError):
    """A golden that cannot be migrated (newer than this version, or not a session)."""


def upgrade_data(data: Any) -> tuple[Session, list[int]]:
    """The session of `data` at the current schema version, and the versions it was
    migrated from (empty when it was already current)."""
    from pydantic import ValidationError

    if not isinstance(data, dict):
        raise UpgradeError("not a session: the top level must be a mapping")
    version = data.get("schema_version", SCHEMA_VERSION)
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise UpgradeError(f"schema_version {version!r} is not a version number")
    if version > SCHEMA_VERSION:
        raise UpgradeError(newer_schema_message(version))
    migrated: list[int] = []
    while version < SCHEMA_VERSION:
        migrate = MIGRATIONS.get(version)
        if migrate is None:
            raise UpgradeError(f"no migration from schema_version {version}")
        data = {**migrate(dict(data)), "schema_version": version + 1}
        migrated.append(version)
        version += 1
    try:
        return Session.model_validate(data), migrated
    except ValidationError as exc:
        from opswald.files import schema_problem

        raise UpgradeError(
            f"not valid at schema_version {SCHEMA_VERSION}: {schema_problem(exc)}"
        ) from None
