"""Hooks a conftest.py can implement (registered in `pytest_addhooks`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from opswald.session import Session


@pytest.hookspec(firstresult=True)
def pytest_opswald_adapter(golden: Session, config: pytest.Config) -> Any:
    """Return the callable that runs the agent for `golden`, or None to pass.

    The callable gets the golden's `input` as its single positional argument (and the
    active modifications as `modifications=` if it declares that parameter); its return
    value is the session's output. ``async def`` callables work too::

        # conftest.py
        from my_agent import run_support_agent

        def pytest_opswald_adapter(golden, config):
            if golden.agent == "support":
                return run_support_agent
    """


def pytest_opswald_normalize(config: pytest.Config) -> Any:
    """Return extra request-normalisation rules for the whole suite, as
    ``{regex: placeholder}`` or a list of ``{"pattern": ..., "replace": ...}``::

        def pytest_opswald_normalize(config):
            return {r"\\d{4}-\\d{2}-\\d{2}": "<date>"}
    """
