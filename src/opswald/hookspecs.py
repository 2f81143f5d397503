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


def pytest_opswald_redact(config: pytest.Config) -> Any:
    """Return extra redaction rules, applied on every write, to every request before
    matching, and to failure messages: ``{regex: label}`` (matches become
    ``<redacted:label>``) or callables ``str -> str``::

        def pytest_opswald_redact(config):
            return {r"cust_[0-9]{6}": "customer-id"}
    """


@pytest.hookspec(firstresult=True)
def pytest_opswald_price(model: str, usage: Any, config: pytest.Config) -> Any:
    """Return the cost in dollars of one LLM call of `model` with `usage` (an
    ``opswald.session.Usage``), or None to fall back to the price table. Anything else (a
    string, a bool, a number below 0 or not finite) fails the run, as what the hook raises
    does, and nothing is written::

        def pytest_opswald_price(model, usage, config):
            if model.startswith("my-finetune"):
                return usage.total() * 2e-6
    """


def pytest_opswald_before_step(replay: Any, step: Any) -> None:
    """Called before each step of a golden's run. `replay` has `golden`, `nodeid` and
    `steps` (so far); `step` has `number`, `type`, `name` and `request`::

        def pytest_opswald_before_step(replay, step):
            print(f"about to run step {step.number}: {step.type} {step.name}")
    """


def pytest_opswald_after_step(replay: Any, step: Any, result: Any) -> None:
    """Called after each step with the recorded step and its result (tool output, LLM
    output, snapshot or user message)::

        def pytest_opswald_after_step(replay, step, result):
            if step.type == "llm_call" and step.usage:
                print(f"tokens used: {step.usage.total()}")
    """


def pytest_opswald_on_error(replay: Any, step: Any, error: Any) -> None:
    """Called when a step ends with an error (`error.type`, `error.message`)::

    def pytest_opswald_on_error(replay, step, error):
        print(f"error in {step.type}: {error.type}: {error.message}")
    """


@pytest.hookspec(firstresult=True)
def pytest_opswald_embed(texts: list[str], config: pytest.Config) -> Any:
    """Return one vector per text for `match: embedding` (no model is bundled)::

    def pytest_opswald_embed(texts, config):
        return my_embedding_client.embed(texts)
    """


@pytest.hookspec(firstresult=True)
def pytest_opswald_compare_output(
    golden: Any, actual: Any, rubric: str | None, config: pytest.Config
) -> Any:
    """Judge an output for `match: judge`: return a bool, a score in 0..1, or a mapping
    with `passed` (and `score`, `reasoning`). The verdict is recorded in the session and
    reused on replay, so the judge is not called again for the same outputs::

        def pytest_opswald_compare_output(golden, actual, rubric, config):
            reply = judge_model(f"Rubric: {rubric}\nExpected: {golden}\nGot: {actual}")
            return {"passed": reply.ok, "reasoning": reply.why}
    """
