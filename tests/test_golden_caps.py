"""The size and depth caps of goldens: what a recording or an update writes is always
what loading takes, and both caps are settings (ini and the `opswald` command alike)."""

from __future__ import annotations

import textwrap

import pytest

from conftest import opswald_cli
from opswald import files
from opswald.files import GoldenLoadError
from opswald.session import Session

AGENT = """
import os
import opswald


@opswald.tool
def page(n):
    return "a" * n


@opswald.tool
def parse_tree(depth):
    v = "leaf"
    for _ in range(depth):
        v = {"child": v}
    return v


def run(input):
    if "depth" in input:
        parse_tree(input["depth"] + int(os.environ.get("DEEPER", "0")))
        return "ok"
    return len(page(input["n"] + int(os.environ.get("LONGER", "0"))))
"""


def _project(pytester: pytest.Pytester, ini: str = "", **stubs: str) -> None:
    pytester.makepyfile(agent=AGENT)
    pytester.makeini(f"[pytest]\nopswald_adapter = agent:run\n{textwrap.dedent(ini)}")
    goldens = pytester.mkdir("goldens")
    for name, text in stubs.items():
        (goldens / f"{name}.golden.yaml").write_text(f"name: {name}\ninput: {text}\n")


def _record(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest(
        "--opswald-goldens", "--opswald-mode=record", "-p", "no:cacheprovider", *args
    )


@pytest.mark.parametrize(
    ("workers", "cap"),
    [([], 64), (["-n", "2"], 70)],
    ids=["in_process_default_cap", "xdist_ini_cap"],
)
def test_a_recording_nested_deeper_than_loading_takes_fails_and_writes_nothing(
    pytester: pytest.Pytester, workers: list[str], cap: int
) -> None:
    """A tool result nested 62 levels deep sits 65 levels down in the golden (its mapping,
    `steps`, the step): over the cap, it is not written; one level less is."""
    ini = f"opswald_max_golden_depth = {cap}\n" if cap != 64 else ""
    _project(pytester, ini, deep=f"{{depth: {cap - 3}}}", deeper=f"{{depth: {cap - 2}}}")
    stub = (pytester.path / "goldens/deeper.golden.yaml").read_bytes()
    result = _record(pytester, *workers)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            f"*not written: the session nests {cap + 1} levels deep (at step 1 › output...), "
            f"deeper than the {cap} levels a golden may have (opswald_max_golden_depth): its "
            "next replay would fail to load it. Have the agent return flatter data, or raise "
            "opswald_max_golden_depth in the pytest config (at most 200)*"
        ]
    )
    assert (pytester.path / "goldens/deeper.golden.yaml").read_bytes() == stub
    assert files.load(pytester.path / "goldens/deep.golden.yaml", max_depth=cap).steps


def test_a_recording_over_the_size_cap_fails_naming_the_cap_and_the_largest_part(
    pytester: pytest.Pytester,
) -> None:
    _project(pytester, "opswald_max_golden_bytes = 4096\n", big="{n: 5000}", small="{n: 10}")
    stub = (pytester.path / "goldens/big.golden.yaml").read_bytes()
    result = _record(pytester)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*big.golden.yaml: not written: the golden would be 5,* bytes (*.* KB), over the "
            "limit of 4,096 bytes (4.0 KB) (opswald_max_golden_bytes): its next replay would "
            "fail to load it; the largest part is step 1 › output (about 5,* bytes "
            "(*.* KB)). Have the agent record less, or raise opswald_max_golden_bytes in the "
            "pytest config*"
        ]
    )
    assert (pytester.path / "goldens/big.golden.yaml").read_bytes() == stub
    assert not files.load(pytester.path / "goldens/small.golden.yaml").is_stub


def test_an_update_that_would_pass_a_cap_fails_and_keeps_the_golden(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _project(pytester, "opswald_max_golden_bytes = 4096\n", big="{n: 3000}")
    _record(pytester).assert_outcomes(passed=1)
    golden = (pytester.path / "goldens/big.golden.yaml").read_bytes()
    monkeypatch.setenv("LONGER", "2000")
    result = pytester.runpytest("--opswald-goldens", "--opswald-update", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*fix: not written: the golden would be 5,* bytes*(opswald_max_golden_bytes)*"]
    )
    assert (pytester.path / "goldens/big.golden.yaml").read_bytes() == golden


def test_raised_caps_record_and_replay_what_the_defaults_refuse(
    pytester: pytest.Pytester,
) -> None:
    _project(
        pytester,
        "opswald_max_golden_depth = 80\nopswald_max_golden_bytes = 40000000\n",
        deep="{depth: 62}",
        big="{n: 21000000}",
    )
    _record(pytester).assert_outcomes(passed=2)
    pytester.makepyfile(
        test_api="""
        import opswald

        def test_the_python_api_applies_the_ini_caps_in_a_test():
            assert opswald.load("goldens/deep.golden.yaml").steps
        """
    )
    result = pytester.runpytest("--opswald-goldens", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
    assert files.limits_in_force() == files.DEFAULT_LIMITS  # the run's caps ended with it
    # the default caps refuse both files, naming the setting that takes them
    with pytest.raises(GoldenLoadError, match=r"nested deeper than 64 levels \(opswald_max"):
        files.load(pytester.path / "goldens/deep.golden.yaml")
    with pytest.raises(GoldenLoadError, match=r"\(opswald_max_golden_bytes\); raise opswald_max"):
        files.load(pytester.path / "goldens/big.golden.yaml")
    # the command line reads the caps from the pytest config too
    done = opswald_cli("validate", "goldens", cwd=pytester.path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 valid, 0 invalid" in done.stdout
    (pytester.path / "pytest.ini").write_text("[pytest]\nopswald_adapter = agent:run\n")
    done = opswald_cli("validate", "goldens", cwd=pytester.path)
    assert done.returncode == 1
    assert "(opswald_max_golden_depth); raise opswald_max_golden_depth" in done.stdout
    assert "(opswald_max_golden_bytes); raise opswald_max_golden_bytes" in done.stdout


def test_a_golden_loaded_under_the_defaults_fails_collection_naming_the_setting(
    pytester: pytest.Pytester,
) -> None:
    _project(pytester, "opswald_max_golden_depth = 80\n", deep="{depth: 62}")
    pytester.runpytest("--opswald-goldens", "--opswald-mode=record").assert_outcomes(passed=1)
    # collected valid under the raised cap: remembered in the collection index
    pytester.runpytest("--opswald-goldens").assert_outcomes(passed=1)
    pytester.makeini("[pytest]\nopswald_adapter = agent:run\n")
    result = pytester.runpytest("--opswald-goldens", "--collect-only")  # the index is not trusted
    result.stdout.fnmatch_lines(
        ["*deep.golden.yaml:*: nested deeper than 64 levels (opswald_max_golden_depth)*"]
    )
    assert result.ret != 0


@pytest.mark.parametrize(
    ("ini", "message"),
    [
        (
            "opswald_max_golden_bytes = 20MB",
            "opswald_max_golden_bytes: '20MB' is not a whole number of bytes; write one from "
            "1,024 up (default 20,971,520)",
        ),
        (
            "opswald_max_golden_depth = 500",
            "opswald_max_golden_depth: 500 levels is out of range; write a number from 16 to 200",
        ),
        (
            "opswald_max_golden_depth = 3",
            "opswald_max_golden_depth: 3 levels is out of range; write a number from 16 to 200",
        ),
    ],
)
def test_a_cap_that_is_not_one_is_refused_by_pytest_and_the_command_line(
    pytester: pytest.Pytester, ini: str, message: str
) -> None:
    _project(pytester, ini + "\n", deep="{depth: 2}")
    result = pytester.runpytest("--opswald-goldens")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{message}*"])
    done = opswald_cli("validate", "goldens", cwd=pytester.path)
    assert done.returncode == 4
    assert message in done.stderr


def _session(output: object) -> Session:
    return Session.model_validate({"name": "x", "input": {}, "steps": [], "output": output})


def test_dump_refuses_what_load_would_refuse_and_writes_what_it_takes(tmp_path: object) -> None:
    from pathlib import Path

    from opswald.files import GoldenWriteRefused, Limits

    folder = Path(str(tmp_path))
    deep: object = "leaf"
    for _ in range(63):  # the root mapping and `output` make 64 levels with these 63
        deep = {"c": deep}
    for name in ("d.golden.yaml", "d.golden.json"):
        files.dump(_session(deep), folder / name)
        assert files.load(folder / name).output == deep
        with pytest.raises(GoldenWriteRefused, match="nests 65 levels deep"):
            files.dump(_session({"c": deep}), folder / ("more" + name))
        assert not (folder / ("more" + name)).exists()
    text = "é" * 600  # 1,200 bytes in UTF-8, 600 characters
    limits = Limits(max_bytes=1100)
    with pytest.raises(GoldenWriteRefused, match=r"over the limit of 1,100 bytes"):
        files.dump(_session(text), folder / "s.golden.yaml", limits=limits)
    with files.using_limits(limits):  # the caps in force, as the command line sets them
        with pytest.raises(GoldenWriteRefused):
            files.dump(_session(text), folder / "s.golden.yaml")
        files.dump(_session("é" * 400), folder / "s.golden.yaml")
        assert files.load(folder / "s.golden.yaml").output == "é" * 400
    files.dump(_session(text), folder / "s.golden.yaml")
    with pytest.raises(GoldenLoadError, match="over the limit of 1,100 bytes"):
        files.load(folder / "s.golden.yaml", max_bytes=1100)


def test_an_agent_exception_leaving_record_is_raised_not_the_cap_refusal(
    pytester: pytest.Pytester,
) -> None:
    """`opswald.record` raises the agent's own exception again; a golden over a cap is then
    said in a warning, not raised over it."""
    import warnings

    import opswald

    target = pytester.path / "goldens" / "g.golden.yaml"
    with files.using_limits(files.Limits(max_bytes=2000, max_depth=64)):
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            with pytest.raises(ValueError, match="agent bug"):
                with opswald.record(target, name="g", input={}) as rec:
                    rec.output = "x" * 5000
                    raise ValueError("agent bug")
    assert not target.exists()
    assert any("was not written" in str(w.message) for w in seen)
    assert "(0.0 MB)" not in " ".join(str(w.message) for w in seen)


def test_help_says_the_range_each_cap_accepts(pytester: pytest.Pytester) -> None:
    """`pytest --help` said `at most 200` of the depth cap, which refuses anything under 16
    too; each cap's help says the range the setting accepts, and its default."""
    from opswald.projectconfig import MIN_GOLDEN_BYTES, MIN_GOLDEN_DEPTH

    result = pytester.runpytest("--help")
    text = " ".join(result.stdout.str().split())
    assert (
        f"opswald_max_golden_depth (string): how deeply a golden's data may nest, in levels: "
        f"{MIN_GOLDEN_DEPTH} to {files.DEPTH_CEILING} (default {files.DEFAULT_MAX_DEPTH})"
    ) in text
    assert (
        f"opswald_max_golden_bytes (string): the largest golden file loaded or written, in "
        f"bytes: {MIN_GOLDEN_BYTES} or more (default {files.DEFAULT_MAX_BYTES}: 20 MB)"
    ) in text
