"""Helpers for framework tests whose pytest runs are subprocesses with only our plugin
(framework SDKs keep process-wide clients and event loops that in-process runs would leak)."""

from __future__ import annotations

from typing import Any

import pytest

from fakeprovider import FakeProvider
from opswald.session import Session, ToolCallStep


def stub(pytester: pytest.Pytester, api: str, request: str = "ORD-1001 arrived broken") -> None:
    """goldens/refund.golden.yaml, a stub asking the order desk for `request` over `api`."""
    (pytester.path / "goldens").mkdir(exist_ok=True)
    (pytester.path / "goldens" / "refund.golden.yaml").write_text(
        f"name: refund\ninput:\n  request: {request}\n  api: {api}\n"
    )


def notes(pytester: pytest.Pytester) -> list[str]:
    """The lines the agent's side-effect tool appended to notes.log."""
    path = pytester.path / "notes.log"
    return path.read_text().splitlines() if path.exists() else []


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """One pytest process with only our plugin (the others cost seconds to import)."""
    return pytester.runpytest_subprocess(
        "-p", "opswald.plugin", "-p", "no:cacheprovider", "--opswald-goldens", *args, timeout=120
    )


def record(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, script: list[dict[str, Any]]
) -> FakeProvider:
    """Record the project's goldens against a fake provider answering `script`."""
    with FakeProvider(script=[dict(s) for s in script]) as fp:
        monkeypatch.setenv("OPENAI_BASE_URL", fp.base_url + "/v1")
        result = run(pytester, "--opswald-mode=record")
        assert result.ret == 0, result.stdout.str()
    return fp


def replay(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.RunResult:
    """Replay with a provider that must not be asked anything (the recording one is gone)."""
    with FakeProvider() as idle:
        monkeypatch.setenv("OPENAI_BASE_URL", idle.base_url + "/v1")
        result = run(pytester)
    assert idle.requests == [], "replay reached the provider"
    return result


def tools(session: Session) -> list[ToolCallStep]:
    return [s for s in session.step_list if isinstance(s, ToolCallStep)]
