"""Collection: which files become items, their ids and markers, and malformed goldens."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import PLUGINS_OFF, record

PYTEST_9 = int(pytest.__version__.split(".")[0]) >= 9

MALFORMED = {
    "syntax.golden.yaml": ("name: x\ninput: {a: 1\n", ["*syntax.golden.yaml:*"]),
    "schema.golden.yaml": ("name: x\ninput: 1\ntags: 5\n", ["*schema.golden.yaml:3*tags*"]),
    "steptype.golden.yaml": (
        "name: x\ninput: 1\nsteps:\n  - step: 1\n    type: tool_cal\n    tool: a\noutput: 1\n",
        ["*steptype.golden.yaml:5*unknown step type 'tool_cal'*"],
    ),
    "alias.golden.yaml": (
        "name: x\ninput: &a [1, 2]\noutput: *a\n",
        ["*alias.golden.yaml:3*alias*"],
    ),
    "dupkey.golden.yaml": (
        "name: x\ninput: 1\nname: y\n",
        ["*dupkey.golden.yaml:3*duplicate*name*"],
    ),
    "broken.golden.json": ('{"name": "x", "input": ', ["*broken.golden.json:1*"]),
}


def test_malformed_goldens_are_one_collection_error_each(project: pytest.Pytester) -> None:
    record(project)
    for name, (text, _) in MALFORMED.items():
        (project.path / "goldens" / name).write_text(text)
    result = project.runpytest("--opswald-goldens")
    result.assert_outcomes(passed=1, errors=len(MALFORMED))
    out = result.stdout.str()
    assert "INTERNALERROR" not in out
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    for _, patterns in MALFORMED.values():
        result.stdout.fnmatch_lines(patterns)
    assert out.count("malformed golden:") == len(MALFORMED)


def test_malformed_goldens_count_toward_maxfail_as_collection_errors_do(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run goes on past a malformed golden as with --continue-on-collection-errors,
    which counts it as a failure: one malformed and one failing golden stop --maxfail=2."""
    record(project)
    text = (project.path / "goldens" / "flight.golden.yaml").read_text()
    for name in ("a_first", "b_second", "c_third"):
        (project.path / "goldens" / f"{name}.golden.yaml").write_text(
            text.replace("name: book_flight", f"name: {name}")
        )
    (project.path / "goldens" / "broken.golden.yaml").write_text("name: x\nsteps: 3\n")
    monkeypatch.setenv("AGENT_VARIANT", "prompt")  # every golden fails at step 4
    result = project.runpytest("--opswald-goldens", "--maxfail=2", "-p", "no:randomly")
    result.stdout.fnmatch_lines(["*stopping after 2 failures*"])
    result.assert_outcomes(failed=1, errors=1)
    result = project.runpytest("--opswald-goldens", "--maxfail=3", "-p", "no:randomly")
    result.assert_outcomes(failed=2, errors=1)
    monkeypatch.delenv("AGENT_VARIANT")
    result = project.runpytest("--opswald-goldens")  # without --maxfail: the rest runs
    result.assert_outcomes(passed=4, errors=1)


def test_goldens_need_the_flag_and_ordinary_tests_run_beside(project: pytest.Pytester) -> None:
    record(project)
    project.makepyfile(test_plain="def test_plain():\n    assert 1 + 1 == 2\n")
    project.runpytest().assert_outcomes(passed=1)  # without the flag: only the plain test
    result = project.runpytest("--opswald-goldens", "--collect-only", "-q")
    result.stdout.fnmatch_lines(
        ["goldens/flight.golden.yaml::book_flight", "test_plain.py::test_plain"],
        consecutive=False,
    )


@pytest.mark.parametrize(
    "arg", ["goldens/flight.golden.yaml::book_flight", "goldens/flight.golden.yaml"]
)
def test_a_golden_file_named_without_the_flag_is_a_usage_error_naming_it(
    project: pytest.Pytester, arg: str
) -> None:
    """The id a failing golden printed, pasted back without the flag: pytest alone would
    answer "not found" for a file that exists."""
    project.makepyfile(test_plain="def test_plain():\n    assert 1 + 1 == 2\n")
    result = project.runpytest("test_plain.py", arg)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: goldens/flight.golden.yaml is a golden file: golden files are collected "
            "only with --opswald-goldens",
            f"fix: pytest --opswald-goldens test_plain.py {arg} *",  # the command kept
        ]
    )
    assert "not found" not in result.stdout.str() + result.stderr.str()
    assert "passed" not in result.stdout.str()  # as for "not found": nothing runs
    project.runpytest("--opswald-goldens", "--opswald-mode=record", arg).assert_outcomes(passed=1)


def test_a_folder_of_goldens_named_without_the_flag_says_how_to_collect_them(
    project: pytest.Pytester,
) -> None:
    """QA (pyopts #7): `pytest goldens/` without the flag ran nothing (exit 5) and said
    nothing of the golden files there; a run that collects tests says nothing."""
    result = project.runpytest("goldens")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    result.stdout.fnmatch_lines(
        [
            "note: goldens holds golden files (flight.golden.yaml, ...), which are "
            "collected only with --opswald-goldens",
            "fix: pytest --opswald-goldens goldens",
        ]
    )
    project.makepyfile(test_plain="def test_plain():\n    assert 1 + 1 == 2\n")
    ran = project.runpytest("goldens", "test_plain.py")
    assert ran.ret == pytest.ExitCode.OK
    assert "holds golden files" not in ran.stdout.str()
    project.mkdir("empty")
    assert "holds golden files" not in project.runpytest("empty").stdout.str()


def test_collect_only_verbose_shows_no_docstring_of_opswald_under_each_golden(
    project: pytest.Pytester,
) -> None:
    """QA (pyopts #5): `--co -v` shows a test function's docstring under its id; every
    golden showed the same line of opswald's stand-in function."""
    record(project)
    project.makepyfile(test_plain='def test_plain():\n    """Adds."""\n')
    lines = project.runpytest("--opswald-goldens", "--co", "-v").stdout.lines
    at = next(i for i, line in enumerate(lines) if "<GoldenItem book_flight>" in line)
    assert lines[at + 1].strip() == "" or lines[at + 1].lstrip().startswith("<"), lines
    assert any(line.strip() == "Adds." for line in lines), "pytest shows a test's docstring"


def test_a_golden_file_in_testpaths_without_the_flag_is_left_alone(
    project: pytest.Pytester,
) -> None:
    """Only paths given on the command line are the user asking for that golden."""
    project.makepyfile(test_plain="def test_plain():\n    assert 1 + 1 == 2\n")
    project.makeini("[pytest]\ntestpaths = test_plain.py goldens/flight.golden.yaml\n")
    result = project.runpytest()
    assert "is a golden file" not in result.stdout.str() + result.stderr.str()


def test_default_golden_path_comes_from_ini(project: pytest.Pytester) -> None:
    record(project)
    project.mkdir("tests")
    (project.path / "tests" / "test_a.py").write_text("def test_a():\n    pass\n")
    project.makeini("[pytest]\ntestpaths = tests\n")
    result = project.runpytest("--opswald-goldens", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["*goldens/flight.golden.yaml::book_flight*"])
    result.stdout.fnmatch_lines(["*tests/test_a.py::test_a*"])
    (project.path / "goldens").rename(project.path / "sessions")
    project.makeini("[pytest]\ntestpaths = tests\nopswald_goldens = sessions\n")
    result = project.runpytest("--opswald-goldens", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["*sessions/flight.golden.yaml::book_flight*"])


def test_run_from_a_subfolder_collects_the_goldens_below_it_only(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As plain pytest collects only the folder it runs in (below the rootdir), so do
    goldens: a package's own goldens, not the root's `goldens/` folder."""
    record(project)
    project.makeini("[pytest]\ntestpaths = tests packages\n")
    project.makepyfile(**{"tests/test_root": "def test_root():\n    pass\n"})
    package = project.mkdir("packages").joinpath("alpha")
    (package / "goldens").mkdir(parents=True)
    text = (project.path / "goldens" / "flight.golden.yaml").read_text()
    (package / "goldens" / "a1.golden.yaml").write_text(text.replace("book_flight", "a1"))
    (package / "test_alpha.py").write_text("def test_alpha():\n    pass\n")
    monkeypatch.chdir(package)
    result = project.runpytest("--opswald-goldens", "--collect-only", "-q")
    collected = sorted(line for line in result.outlines if "::" in line)
    assert collected == [
        "packages/alpha/goldens/a1.golden.yaml::a1",
        "packages/alpha/test_alpha.py::test_alpha",
    ]
    monkeypatch.chdir(project.path)  # from the rootdir: testpaths and the goldens folder
    result = project.runpytest("--opswald-goldens", "--collect-only", "-q")
    collected = sorted(line for line in result.outlines if "::" in line)
    assert collected == [
        "goldens/flight.golden.yaml::book_flight",
        "packages/alpha/goldens/a1.golden.yaml::a1",
        "packages/alpha/test_alpha.py::test_alpha",
        "tests/test_root.py::test_root",
    ]


def retag(text: str, tag: str) -> str:
    """A recorded golden of the stub (`tags: [critical]`, kept as the stub wrote it) with
    `tag` for `critical`."""
    assert "tags: [critical]\n" in text, text
    return text.replace("tags: [critical]\n", f"tags: [{tag}]\n")


def test_tags_become_markers_under_strict_markers(project: pytest.Pytester) -> None:
    record(project)
    text = (project.path / "goldens" / "flight.golden.yaml").read_text()
    (project.path / "goldens" / "minor.golden.yaml").write_text(
        retag(text.replace("name: book_flight", "name: minor"), "minor")
    )
    result = project.runpytest("--opswald-goldens", "--strict-markers", "-m", "critical", "-v")
    result.assert_outcomes(passed=1, deselected=1)
    result.stdout.fnmatch_lines(["*flight.golden.yaml::book_flight PASSED*"])


@pytest.mark.parametrize("order", [("goldens", "tests"), ("tests", "goldens")])
def test_a_golden_tag_does_not_register_a_marker_for_ordinary_tests(
    project: pytest.Pytester, order: tuple[str, str]
) -> None:
    """--strict-markers judges a test's marks the same whatever was collected before it."""
    record(project)
    project.makepyfile(
        **{"tests/test_typo": "import pytest\n\n@pytest.mark.critical\ndef test_a():\n    pass\n"}
    )
    result = project.runpytest("--opswald-goldens", "--strict-markers", *order)
    result.stdout.fnmatch_lines(["*'critical' not found in `markers` configuration option*"])
    assert result.ret == pytest.ExitCode.INTERRUPTED


@pytest.mark.parametrize(
    ("tag", "said"),
    [
        ("xfail", "one of pytest's own markers and would expect the golden to fail"),
        ("skip", "one of pytest's own markers and would skip the golden"),
        ("skipif", "one of pytest's own markers and would skip the golden"),
        ("parametrize", "one of pytest's own markers and would change how the golden is"),
        ("golden", "opswald's own marker"),
    ],
)
def test_a_tag_named_like_a_pytest_marker_is_a_collection_error(
    project: pytest.Pytester, tag: str, said: str
) -> None:
    """The error says what the marker would do (`golden` is opswald's own marker, not
    pytest's; `parametrize` neither skips nor expects a failure)."""
    record(project)
    golden = project.path / "goldens" / "flight.golden.yaml"
    golden.write_text(retag(golden.read_text(), tag))
    result = project.runpytest("--opswald-goldens")
    result.stdout.fnmatch_lines([f"*tag '{tag}' is {said}*"])
    result.assert_outcomes(errors=1)


@pytest.mark.parametrize("tag", ["flaky", "anyio"])
def test_a_tag_named_like_an_installed_plugins_marker_is_a_collection_error(
    project: pytest.Pytester, tag: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pytest-rerunfailures (`flaky`) and anyio (`anyio`) are installed here: a golden
    tagged with their marker would be rerun or run by them. A marker the project declares
    itself (conftest or ini) stays a tag, and selects with -m."""
    monkeypatch.setenv("PYTEST_ADDOPTS", PLUGINS_OFF)  # pytest-rerunfailures and anyio loaded
    record(project)
    golden = project.path / "goldens" / "flight.golden.yaml"
    text = golden.read_text()
    (project.path / "goldens" / "other.golden.yaml").write_text(
        retag(text.replace("name: book_flight", "name: other"), "slow")
    )
    golden.write_text(retag(text, tag))
    project.makeconftest(
        "import agent\n\n"
        "def pytest_configure(config):\n"
        "    config.addinivalue_line('markers', 'slow: a slow golden')\n\n"
        "def pytest_opswald_adapter(golden, config):\n"
        "    return agent.run\n"
    )
    result = project.runpytest("--opswald-goldens", "--strict-markers", "-rA")
    line = next(
        n for n, t in enumerate(golden.read_text().splitlines(), 1) if t.startswith("tags:")
    )
    result.stdout.fnmatch_lines(
        [  # (`[[]`: fnmatch's `[`)
            f"*flight.golden.yaml:{line}: tags[[]0]: tag '{tag}' is the marker of an installed "
            f"pytest plugin (@pytest.mark.{tag}) and would change how the golden runs; choose "
            "another name*"
        ]
    )
    result.assert_outcomes(passed=1, errors=1)
    assert "rerun" not in result.parseoutcomes()
    result = project.runpytest("--opswald-goldens", "-m", "slow", "goldens/other.golden.yaml")
    result.assert_outcomes(passed=1)


def test_json_goldens_are_collected(project: pytest.Pytester) -> None:
    (project.path / "goldens" / "flight.golden.yaml").unlink()
    (project.path / "goldens" / "flight.golden.json").write_text(
        '{"name": "json_flight", "input": {"q": "Book AF1 for me", "who": "Alice"}}'
    )
    record(project)
    text = (project.path / "goldens" / "flight.golden.json").read_text()
    assert text.lstrip().startswith("{") and '"steps": [' in text
    result = project.runpytest("--opswald-goldens", "-v")
    result.stdout.fnmatch_lines(["*flight.golden.json::json_flight PASSED*"])


def test_missing_adapter_lists_what_was_tried(pytester: pytest.Pytester) -> None:
    pytester.mkdir("goldens")
    (pytester.path / "goldens" / "a.golden.yaml").write_text(
        "name: a\nagent: nobody\ninput: 1\nsteps: []\noutput: 1\n"
    )
    result = pytester.runpytest("--opswald-goldens")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*no adapter to run this golden's agent; tried:*",
            "*- the conftest hook pytest_opswald_adapter*",
            "*- the golden's agent 'nobody': not registered*",
            "*- the ini option opswald_adapter: not set*",
        ]
    )


def test_adapter_from_ini_and_from_registry(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        myagent="""
        import opswald

        def run(input):
            return {"echo": input}

        @opswald.adapter("shouty")
        def shout(input):
            return {"echo": str(input).upper()}
        """,
        conftest="import myagent\n",
    )
    pytester.makeini("[pytest]\nopswald_adapter = myagent:run\n")
    pytester.mkdir("goldens")
    (pytester.path / "goldens" / "a.golden.yaml").write_text(
        "name: a\ninput: hi\nsteps: []\noutput: {echo: hi}\n"
    )
    (pytester.path / "goldens" / "b.golden.yaml").write_text(
        "name: b\nagent: shouty\ninput: hi\nsteps: []\noutput: {echo: HI}\n"
    )
    pytester.runpytest("--opswald-goldens").assert_outcomes(passed=2)


def test_adapter_from_an_entry_point(pytester: pytest.Pytester) -> None:
    """A package exposing `[project.entry-points."opswald.adapters"] shop = "shopagent:run"`."""
    pytester.makepyfile(shopagent="def run(input):\n    return {'shop': input}\n")
    dist = pytester.mkdir("shopagent-1.0.dist-info")
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: shopagent\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[opswald.adapters]\nshop = shopagent:run\n")
    pytester.mkdir("goldens")
    (pytester.path / "goldens" / "a.golden.yaml").write_text(
        "name: a\nagent: shop\ninput: hi\nsteps: []\noutput: {shop: hi}\n"
    )
    pytester.makeconftest(
        "import sys, pathlib\nsys.path.insert(0, str(pathlib.Path(__file__).parent))\n"
    )
    pytester.runpytest("--opswald-goldens").assert_outcomes(passed=1)


def test_adapter_entry_points_are_read_once_per_sys_path(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Reading entry points scans every installed distribution; a run asks once per golden."""
    import importlib.metadata
    import sys

    from opswald import adapters

    real = importlib.metadata.entry_points
    calls: list[object] = []

    def counting(**kwargs: object) -> object:
        calls.append(kwargs)
        return real(**kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(importlib.metadata, "entry_points", counting)
    adapters._entry_points.cache_clear()
    for _ in range(50):
        assert adapters.from_entry_points("no-such-adapter") is None
    assert len(calls) == 1
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])  # a new place to look
    assert adapters.from_entry_points("no-such-adapter") is None
    assert len(calls) == 2
    adapters._entry_points.cache_clear()


def test_with_another_collection_error_the_interrupted_banner_counts_every_error(
    project: pytest.Pytester,
) -> None:
    for name in ("a", "b"):
        (project.path / "goldens" / f"{name}.golden.yaml").write_text("name: [unclosed\n")
    project.makepyfile(test_broken="def test_x(:\n")
    result = project.runpytest("--opswald-goldens", "goldens", "test_broken.py")
    result.stdout.fnmatch_lines(["*Interrupted: 3 errors during collection*"])
    assert result.ret == pytest.ExitCode.INTERRUPTED


def test_a_failure_has_a_one_line_crash_message_at_its_step(project: pytest.Pytester) -> None:
    """--tb=line, the -r summary line and JUnit's message attribute show the failure's
    headline at the golden's failing step, not the whole diff (nor 50 characters of it);
    also from xdist workers."""
    record(project)
    golden = project.path / "goldens" / "flight.golden.yaml"
    golden.write_text(golden.read_text().replace("passenger: Alice", "passenger: Alicia", 1))
    line = next(
        n for n, text in enumerate(golden.read_text().splitlines(), 1) if text == "  - step: 2"
    )
    for workers in ([], ["-n", "2"]):
        result = project.runpytest(
            "--opswald-goldens", "--tb=line", "-rf", "--junitxml=out.xml", *workers
        )
        result.assert_outcomes(failed=1)
        headline = "step 2 of 7 · tool_call lookup: called lookup with other arguments"
        result.stdout.fnmatch_lines(
            [
                f"*goldens/flight.golden.yaml:{line}: {headline}",
                "FAILED *book_flight - step 2 of 7 · tool_call*",  # cut to the terminal's width
            ]
        )
        xml = (project.path / "out.xml").read_text()
        assert f'message="{headline}"' in xml.replace("&#183;", "·")


def _golden_copies(project: pytest.Pytester, *where: str) -> None:
    """The recorded goldens/flight.golden.yaml copied to each `folder/name` (its `name:`
    the file's), after a recording."""
    text = (project.path / "goldens" / "flight.golden.yaml").read_text()
    for path in where:
        target = project.path / f"{path}.golden.yaml"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text.replace("name: book_flight", f"name: {target.name.split('.')[0]}"))


def _collected(result: pytest.RunResult) -> list[str]:
    return [line for line in result.outlines if "::" in line]


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_goldens_are_collected_from_every_folder_the_ini_names(
    project: pytest.Pytester, workers: list[str]
) -> None:
    """Folders separated by spaces or by lines, each relative to the rootdir; the root's
    `goldens/` is not one of them once the setting names others."""
    record(project)
    _golden_copies(project, "services/a/goldens/a1", "services/b/goldens/b1")
    project.makepyfile(**{"tests/test_plain": "def test_plain():\n    pass\n"})
    project.makeini(
        "[pytest]\ntestpaths = tests\nopswald_goldens =\n    services/a/goldens\n"
        "    services/b/goldens\n"
    )
    result = project.runpytest("--opswald-goldens", "--collect-only", "-q", "-p", "no:randomly")
    assert _collected(result) == [
        "tests/test_plain.py::test_plain",
        "services/a/goldens/a1.golden.yaml::a1",
        "services/b/goldens/b1.golden.yaml::b1",
    ]
    result = project.runpytest("--opswald-goldens", "-v", *workers)
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines_random(
        [
            "PASSED *services/a/goldens/a1.golden.yaml::a1",
            "PASSED *services/b/goldens/b1.golden.yaml::b1",
        ]
    )
    # on one line, and from -o, which wins over the file
    project.makeini("[pytest]\ntestpaths = tests\nopswald_goldens = services/a/goldens goldens\n")
    result = project.runpytest("--opswald-goldens", "--collect-only", "-q", "-p", "no:randomly")
    assert _collected(result)[1:] == [
        "services/a/goldens/a1.golden.yaml::a1",
        "goldens/flight.golden.yaml::book_flight",
    ]
    result = project.runpytest(
        "--opswald-goldens", "--collect-only", "-q", "-p", "no:randomly",
        "-o", "opswald_goldens=services/b/goldens services/a/goldens/a1.golden.yaml",
    )  # fmt: skip
    assert _collected(result)[1:] == [
        "services/b/goldens/b1.golden.yaml::b1",
        "services/a/goldens/a1.golden.yaml::a1",
    ]


def test_glob_patterns_in_the_ini_are_expanded_in_name_order(project: pytest.Pytester) -> None:
    """As pytest's testpaths: `packages/*/goldens` names every package's goldens, sorted;
    a pattern matching nothing is passed over quietly while others find something, and
    warned about when nothing at all is found."""
    record(project)
    _golden_copies(project, "packages/zeta/goldens/z1", "packages/alpha/goldens/a1")
    _golden_copies(project, "packages/alpha/goldens/deep/nested/a2")
    project.makeini("[pytest]\ntestpaths = tests\nopswald_goldens = packages/*/goldens legacy/*\n")
    project.mkdir("tests")
    result = project.runpytest("--opswald-goldens", "--collect-only", "-q", "-p", "no:randomly")
    assert _collected(result) == [
        "packages/alpha/goldens/a1.golden.yaml::a1",
        "packages/alpha/goldens/deep/nested/a2.golden.yaml::a2",
        "packages/zeta/goldens/z1.golden.yaml::z1",
    ]
    assert "opswald_goldens" not in result.stdout.str()
    project.makeini("[pytest]\ntestpaths = tests\nopswald_goldens = packages/**/nested\n")
    result = project.runpytest("--opswald-goldens", "--collect-only", "-q")
    assert _collected(result) == ["packages/alpha/goldens/deep/nested/a2.golden.yaml::a2"]
    project.makeini("[pytest]\ntestpaths = tests\nopswald_goldens = legacy/* old/*/goldens\n")
    result = project.runpytest("--opswald-goldens", "--collect-only", "-q")
    assert _collected(result) == []
    result.stdout.fnmatch_lines(
        ["*opswald_goldens = legacy/* old/*/goldens: no files or folders match under *"]
    )


def test_a_folder_the_ini_names_twice_or_inside_another_is_collected_once(
    project: pytest.Pytester,
) -> None:
    record(project)
    _golden_copies(project, "goldens/sub/s1")
    project.makepyfile(**{"tests/test_plain": "def test_plain():\n    pass\n"})
    project.makeini(
        "[pytest]\ntestpaths = tests\n"
        "opswald_goldens = goldens/sub goldens ./goldens goldens/* tests/../goldens\n"
    )
    result = project.runpytest("--opswald-goldens", "--collect-only", "-q", "-p", "no:randomly")
    assert _collected(result) == [
        "tests/test_plain.py::test_plain",
        "goldens/flight.golden.yaml::book_flight",
        "goldens/sub/s1.golden.yaml::s1",
    ]
    result = project.runpytest("--opswald-goldens")
    result.assert_outcomes(passed=3)


def test_a_folder_in_the_ini_list_that_does_not_exist_is_warned_about(
    project: pytest.Pytester,
) -> None:
    """The folders that exist are collected; the one that does not is named, as when the
    setting named one folder."""
    record(project)
    _golden_copies(project, "services/a/goldens/a1")
    project.makeini("[pytest]\nopswald_goldens = services/a/goldens services/c/goldens\n")
    result = project.runpytest("--opswald-goldens", "-p", "no:randomly")
    result.assert_outcomes(passed=2)  # the rootdir's own (no testpaths) and services/a
    result.stdout.fnmatch_lines(
        ["*opswald_goldens = services/c/goldens: no such file or folder under *"]
    )
    assert "services/a/goldens: no such" not in result.stdout.str()
    result = project.runpytest("--opswald-goldens", "-W", "error::pytest.PytestConfigWarning")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "services/c/goldens: no such file or folder" in result.stderr.str()


def test_pyproject_lists_the_folders(project: pytest.Pytester) -> None:
    record(project)
    _golden_copies(project, "services/a/goldens/a1", "services/b/goldens/b1")
    project.mkdir("tests")
    project.makepyprojecttoml(
        "[tool.pytest.ini_options]\ntestpaths = ['tests']\n"
        'opswald_goldens = ["services/b/goldens", "services/a/goldens"]\n'
    )
    result = project.runpytest("--opswald-goldens", "--collect-only", "-q", "-p", "no:randomly")
    assert _collected(result) == [
        "services/b/goldens/b1.golden.yaml::b1",
        "services/a/goldens/a1.golden.yaml::a1",
    ]


@pytest.mark.skipif(not PYTEST_9, reason="[tool.pytest] native TOML came with pytest 9")
def test_native_toml_lists_the_folders_and_refuses_a_string(project: pytest.Pytester) -> None:
    record(project)
    _golden_copies(project, "services/a/goldens/a1")
    project.mkdir("tests")
    project.makepyprojecttoml(
        "[tool.pytest]\ntestpaths = ['tests']\nopswald_goldens = ['services/*/goldens']\n"
    )
    result = project.runpytest("--opswald-goldens", "--collect-only", "-q")
    assert _collected(result) == ["services/a/goldens/a1.golden.yaml::a1"]
    project.makepyprojecttoml(
        "[tool.pytest]\ntestpaths = ['tests']\nopswald_goldens = 'services/a/goldens'\n"
    )
    result = project.runpytest("--opswald-goldens", "--collect-only", "-q")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*opswald_goldens*expects a list*"])


@pytest.mark.skipif(not PYTEST_9, reason="[tool.pytest] native TOML came with pytest 9")
def test_native_toml_takes_numbers_and_true_false_text_for_opswalds_settings(
    project: pytest.Pytester,
) -> None:
    """Under pytest 9's `[tool.pytest]`, `opswald_max_golden_bytes = 2048` (a TOML number
    for a text setting) is read as its text, and `opswald_langgraph_state = "false"` as an
    ini file's text; pytest itself raises a TypeError for both (an INTERNALERROR, in every
    run of the project, goldens or not). A value of no usable type is a usage error."""
    record(project)
    project.makepyprojecttoml(
        '[tool.pytest]\nopswald_max_golden_bytes = 2048\nopswald_langgraph_state = "false"\n'
    )
    result = project.runpytest("--opswald-goldens")
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()
    result.stdout.fnmatch_lines(["*opswald_max_golden_bytes*"])  # the golden is over 2 KB
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    project.makepyprojecttoml("[tool.pytest]\nopswald_max_golden_bytes = 1048576\n")
    project.runpytest("--opswald-goldens").assert_outcomes(passed=1)
    project.makepyprojecttoml("[tool.pytest]\nopswald_redact = true\n")
    result = project.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*config option 'opswald_redact' expects a string, got bool: True; write it as a "
         'TOML string ("...")']
    )  # fmt: skip
    project.makepyprojecttoml('[tool.pytest]\nopswald_langgraph_state = "maybe"\n')
    result = project.runpytest("--opswald-goldens")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*opswald_langgraph_state: invalid truth value 'maybe'; write true or false"]
    )


def test_run_from_a_subfolder_collects_the_goldens_below_it_of_every_ini_folder(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Several folders combine with the subfolder rule as one does: run in a subfolder
    without paths, pytest collects that folder, so the goldens of the listed folders that
    are below it (and ordinary ones there); from the rootdir, every listed folder."""
    record(project)
    _golden_copies(
        project,
        "packages/alpha/goldens/a1",
        "packages/alpha/sessions/a2",
        "packages/beta/goldens/b1",
    )
    project.makeini(
        "[pytest]\ntestpaths = tests\nopswald_goldens = packages/*/goldens packages/*/sessions\n"
    )
    project.mkdir("tests")
    monkeypatch.chdir(project.path / "packages" / "alpha")
    result = project.runpytest("--opswald-goldens", "--collect-only", "-q")
    assert sorted(_collected(result)) == [
        "packages/alpha/goldens/a1.golden.yaml::a1",
        "packages/alpha/sessions/a2.golden.yaml::a2",
    ]
    monkeypatch.chdir(project.path / "packages")
    result = project.runpytest("--opswald-goldens", "--collect-only", "-q")
    assert len(_collected(result)) == 3
    monkeypatch.chdir(project.path)
    result = project.runpytest("--opswald-goldens", "--collect-only", "-q", "-p", "no:randomly")
    assert _collected(result) == [
        "packages/alpha/goldens/a1.golden.yaml::a1",
        "packages/beta/goldens/b1.golden.yaml::b1",
        "packages/alpha/sessions/a2.golden.yaml::a2",
    ]


TWO_PROBLEMS = """\
name: broken
input: {q: hi}
steps:
  - step: 1
    type: tool_cal
    tool: lookup
  - step: 2
    type: tool_call
    input: {}
output: done
"""


def test_a_malformed_golden_shows_every_problem_by_step_number(
    project: pytest.Pytester,
) -> None:
    """The collection error showed the first problem and `(and 1 more problem)`, so the
    second was shown nowhere, at `steps[0].type` where the file says `step: 1`. Each
    problem is a line of its own, its step named as the file numbers it; the JSON report's
    error holds them all."""
    record(project)
    (project.path / "goldens" / "two.golden.yaml").write_text(TWO_PROBLEMS)
    result = project.runpytest("--opswald-goldens", "--opswald-json", "r.json")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "malformed golden: *goldens/two.golden.yaml:5: step 1 › type: unknown step type "
            "'tool_cal'; expected one of: *",
            "*goldens/two.golden.yaml:7: step 2 › tool: required field is missing",
        ]
    )
    out = result.stdout.str()
    assert "more problem" not in out and "steps[" not in out
    import json

    rows = json.loads((project.path / "r.json").read_text())["goldens"]
    [row] = [r for r in rows if r["status"] == "error"]
    assert row["error"].splitlines() == [
        "malformed golden: goldens/two.golden.yaml:5: step 1 › type: unknown step type "
        "'tool_cal'; expected one of: user_input, llm_call, tool_call, state",
        "goldens/two.golden.yaml:7: step 2 › tool: required field is missing",
    ]
    assert row["suggestion"].startswith("correct goldens/two.golden.yaml where the error")
