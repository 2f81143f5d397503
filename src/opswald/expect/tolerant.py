"""Tolerant output matching for live runs: `similar` (fuzzy text), `embedding` (cosine
similarity through an embedder you plug in) and `judge` (a rubric, judged by a callable
you configure). Judge verdicts are recorded in the session and reused on replay."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from opswald.expect.output import as_text
from opswald.jsonable import to_jsonable
from opswald.paths import as_written, drop
from opswald.session import OutputExpect
from opswald.verdict import Difference, Finding

TOLERANT = frozenset({"similar", "embedding", "judge"})
DEFAULT_THRESHOLD = {"similar": 0.8, "embedding": 0.85}

Embedder = Callable[[Sequence[str]], Sequence[Sequence[float]]]
"""Texts -> vectors (one per text)."""

Judge = Callable[..., Any]
"""`judge(golden=..., actual=..., rubric=...)` -> bool, a number in 0..1, or a mapping with
`passed` (and optionally `score`, `reasoning`)."""


@dataclass(frozen=True, kw_only=True)
class Tolerance:
    """What tolerant matching may call; either may be missing."""

    embedder: Embedder | None = None
    judge: Judge | None = None


def similarity(a: str, b: str) -> float:
    """Fuzzy text similarity in 0..1 (normalised Indel similarity, via rapidfuzz)."""
    from rapidfuzz import fuzz

    return float(fuzz.ratio(a, b)) / 100.0


def cosine(u: Sequence[float], v: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(u, v, strict=True))
    norm = math.sqrt(sum(x * x for x in u)) * math.sqrt(sum(y * y for y in v))
    return dot / norm if norm else 0.0


def verdict_key(golden: Any, actual: Any, rubric: str | None) -> str:
    """Identifies one judgement: the same outputs and rubric get the same verdict."""
    text = json.dumps([golden, actual, rubric], sort_keys=True, ensure_ascii=False, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def compare_tolerant(
    golden: Any,
    actual: Any,
    spec: OutputExpect,
    tolerance: Tolerance,
    recorded: Sequence[dict[str, Any]] = (),
) -> tuple[Finding | None, dict[str, Any] | None]:
    """(a failing finding or None, the verdict to record or None). `ignore_paths` are
    dropped from both sides first, as in every other mode; what an embedder or a judge
    gives back is checked, and a wrong answer is one failing finding, not a traceback."""
    ignore = [path for p in spec.ignore_paths for path in as_written(p, "output")]
    golden, actual = drop(to_jsonable(golden), ignore), drop(to_jsonable(actual), ignore)
    value = None if spec.value is None else drop(to_jsonable(spec.value), ignore)
    expected = golden if value is None else value
    if spec.match == "similar":
        threshold = spec.threshold if spec.threshold is not None else DEFAULT_THRESHOLD["similar"]
        score = similarity(as_text(expected), as_text(actual))
        return _scored("similar", score, threshold, expected, actual), None
    if spec.match == "embedding":
        threshold = spec.threshold if spec.threshold is not None else DEFAULT_THRESHOLD["embedding"]
        if tolerance.embedder is None:
            return _unconfigured(
                "embedding",
                "an embedder: the ini option opswald_embedder = "
                "'package.module:embed' or the pytest_opswald_embed hook",
                needs='an embedder: opswald_embedder = "my_pkg.ai:embed" in the pytest '
                "config, or the hook pytest_opswald_embed(texts, config)",
                hint="an embedder turns texts into vectors; no model is bundled",
            ), None
        vectors = tolerance.embedder([as_text(expected), as_text(actual)])
        problem = _vector_problem(vectors)
        if problem:
            return _bad_answer("embedding", f"the embedder returned {problem}"), None
        score = cosine(vectors[0], vectors[1])
        return _scored("embedding", score, threshold, expected, actual), None
    return _judged(expected, actual, spec, tolerance, recorded)


def _judged(
    expected: Any,
    actual: Any,
    spec: OutputExpect,
    tolerance: Tolerance,
    recorded: Sequence[dict[str, Any]],
) -> tuple[Finding | None, dict[str, Any] | None]:
    key = verdict_key(expected, actual, spec.rubric)
    verdict = next((v for v in recorded if v.get("key") == key), None)
    if verdict is None:
        if tolerance.judge is None:
            return _unconfigured(
                "judge",
                "a judge: the ini option opswald_judge = "
                "'package.module:judge' or the pytest_opswald_compare_output "
                "hook",
                needs='a judge: opswald_judge = "my_pkg.ai:judge" in the pytest config, '
                "or the hook pytest_opswald_compare_output(golden, actual, rubric, config)",
                hint="a judge is called as judge(golden=..., actual=..., rubric=...) and "
                "returns a bool, a score in 0..1 or a mapping with 'passed'",
            ), None
        answer = tolerance.judge(golden=expected, actual=actual, rubric=spec.rubric)
        try:
            judged = _verdict_of(answer)
        except (TypeError, ValueError) as exc:
            return _bad_answer("judge", f"the judge answered {exc}"), None
        verdict = {"key": key, "matcher": "judge", "rubric": spec.rubric, **judged}
    if verdict.get("passed"):
        return None, verdict
    reasoning = verdict.get("reasoning") or "no reasoning given"
    return (
        Finding(
            kind="output",
            message=f"the judge rejected the output (match: judge): {reasoning}",
            differences=(Difference(path=("output",), golden=expected, actual=actual),),
            suggestion=f"rubric: {spec.rubric}" if spec.rubric else "",
        ),
        verdict,
    )


def _verdict_of(result: Any) -> dict[str, Any]:
    if isinstance(result, bool):
        return {"passed": result}
    if isinstance(result, int | float):
        return {"passed": _score(result) >= 0.5, "score": _score(result)}
    if isinstance(result, dict) and "passed" in result:
        out: dict[str, Any] = {"passed": bool(result["passed"])}
        if "score" in result:
            out["score"] = _score(result["score"])
        if "reasoning" in result:
            out["reasoning"] = str(result["reasoning"])
        return out
    raise TypeError(
        f"{_shown(result)}; a judge returns a bool, a score in 0..1 or a mapping with "
        "'passed' (and optionally 'score' and 'reasoning')"
    )


def _score(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValueError(f"a score of {_shown(value)}; a score is a number in 0..1")
    return float(value)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:79] + "…"


def _vector_problem(vectors: Any) -> str:
    """Why `vectors` is not one vector of numbers per text (two texts), or ""."""
    try:
        rows = list(vectors)
        if len(rows) != 2:
            return f"{len(rows)} vector(s) for 2 texts"
        lengths = [len(row) for row in rows]
        numbers = all(
            isinstance(x, int | float) or hasattr(x, "__float__") for row in rows for x in row
        )
    except TypeError:
        return f"{_shown(vectors)}, not one vector per text"
    if not numbers:
        return "vectors that are not all numbers"
    if lengths[0] != lengths[1] or not lengths[0]:
        return f"vectors of lengths {lengths[0]} and {lengths[1]}"
    return ""


def _bad_answer(kind: str, message: str) -> Finding:
    hook = "pytest_opswald_embed" if kind == "embedding" else "pytest_opswald_compare_output"
    return Finding(
        kind="output",
        message=f"match: {kind} could not judge the output: {message}",
        suggestion=f"check the {kind} function (its ini option or the {hook} hook)",
    )


def _scored(
    kind: str, score: float, threshold: float, expected: Any, actual: Any
) -> Finding | None:
    if score >= threshold:
        return None
    return Finding(
        kind="output",
        message=f"output is not similar enough (match: {kind}): {_below(score, threshold)}",
        differences=(Difference(path=("output",), golden=expected, actual=actual),),
        suggestion="lower expect.output.threshold if this much change is acceptable",
    )


def _below(score: float, threshold: float) -> str:
    """`score < threshold` with as many decimals as it takes for them not to read the same
    (`0.9897 < 0.9900`, not `0.99 < 0.99`)."""
    for digits in range(2, 17):
        shown, limit = f"{score:.{digits}f}", f"{threshold:.{digits}f}"
        if shown != limit:
            break
    return f"{shown} < {limit}"


def _unconfigured(kind: str, what: str, *, needs: str, hint: str) -> Finding:
    """No output can pass without the setting: the fix line says what to configure (and
    that an update, which rewrites the golden, cannot help)."""
    return Finding(
        kind="output",
        message=f"match: {kind} needs {what}",
        suggestion=f"{hint} (see the README, 'Tolerant matching for live runs')",
        needs=needs,
    )
