"""The command line finds the pytest config file pytest would use for the same paths, and
reads its values with pytest's rules (opswald/projectconfig.py)."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest
from _pytest.config.findpaths import determine_setup

from opswald import projectconfig
from opswald.projectconfig import SettingError, find

PYTEST_9 = int(pytest.__version__.split(".")[0]) >= 9
SECTION = {
    "pytest.ini": "[pytest]\nopswald_mode = live\n",
    "tox.ini": "[pytest]\nopswald_mode = live\n",
    "setup.cfg": "[tool:pytest]\nopswald_mode = live\n",
    "pyproject.toml": '[tool.pytest.ini_options]\nopswald_mode = "live"\n',
    "pytest.toml": '[pytest]\nopswald_mode = "live"\n',
}
NO_SECTION = {
    "tox.ini": "[tox]\nenvlist = py311\n",
    "setup.cfg": "[metadata]\nname = x\n",
    "pyproject.toml": '[project]\nname = "x"\n',
}

# layouts: files to write (relative path -> text), the folder to run from, the paths given
LAYOUTS: dict[str, tuple[dict[str, str], str, list[str]]] = {
    "ini at the root": (
        {"pytest.ini": SECTION["pytest.ini"], "goldens/g.golden.yaml": ""},
        "",
        ["goldens/g.golden.yaml"],
    ),
    "from a subfolder, golden above": (
        {"pyproject.toml": SECTION["pyproject.toml"], "goldens/g.golden.yaml": "", "sub/x": ""},
        "sub",
        ["../goldens/g.golden.yaml"],
    ),
    "files without a pytest section are passed over": (
        {
            "tox.ini": SECTION["tox.ini"],
            "pkg/pyproject.toml": NO_SECTION["pyproject.toml"],
            "pkg/setup.cfg": NO_SECTION["setup.cfg"],
            "pkg/tox.ini": NO_SECTION["tox.ini"],
            "pkg/goldens/g.golden.yaml": "",
        },
        "",
        ["pkg/goldens/g.golden.yaml"],
    ),
    "a pyproject.toml without a section, when nothing else is found": (
        {"pkg/pyproject.toml": NO_SECTION["pyproject.toml"], "pkg/goldens/g.golden.yaml": ""},
        "",
        ["pkg/goldens/g.golden.yaml"],
    ),
    "pytest.ini before pyproject.toml in one folder": (
        {
            "pyproject.toml": SECTION["pyproject.toml"],
            "pytest.ini": SECTION["pytest.ini"],
            "goldens/g.golden.yaml": "",
        },
        "",
        ["goldens"],
    ),
    "the nearest config wins": (
        {
            "pytest.ini": SECTION["pytest.ini"],
            "packages/alpha/setup.cfg": SECTION["setup.cfg"],
            "packages/alpha/goldens/a.golden.yaml": "",
        },
        "",
        ["packages/alpha/goldens/a.golden.yaml"],
    ),
    "setup.py marks the rootdir when no config is found": (
        {"setup.py": "", "goldens/deep/g.golden.yaml": ""},
        "goldens",
        ["deep/g.golden.yaml"],
    ),
    "no config: the common folder": (
        {"a/b/g.golden.yaml": "", "a/c/x": ""},
        "a/c",
        ["../b/g.golden.yaml"],
    ),
    "a path that does not exist: the current folder": (
        {"pytest.ini": SECTION["pytest.ini"], "sub/x": ""},
        "sub",
        ["missing.golden.yaml"],
    ),
    "two paths in two packages": (
        {
            "tox.ini": SECTION["tox.ini"],
            "p1/goldens/a.golden.yaml": "",
            "p2/goldens/b.golden.yaml": "",
        },
        "p1",
        ["goldens/a.golden.yaml", "../p2/goldens"],
    ),
    "pytest.toml (pytest 9) before pytest.ini": (
        {
            "pytest.toml": SECTION["pytest.toml"],
            "pytest.ini": SECTION["pytest.ini"],
            "goldens/g.golden.yaml": "",
        },
        "",
        ["goldens"],
    ),
}


def pytests_choice(here: Path, args: list[str]) -> tuple[Path, Path | None, dict[str, Any]]:
    """The rootdir, inifile and values pytest itself determines."""
    offered = {
        "inifile": None,
        "override_ini": None,
        "args": args,
        "rootdir_cmd_arg": None,
        "invocation_dir": here,
    }
    names = inspect.signature(determine_setup).parameters
    rootdir, inipath, values, *_ = determine_setup(
        **{k: v for k, v in offered.items() if k in names}
    )
    return rootdir, inipath, {k: getattr(v, "value", v) for k, v in values.items()}


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_the_config_pytest_would_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, layout: str
) -> None:
    files, cwd, args = LAYOUTS[layout]
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    here = tmp_path / cwd
    monkeypatch.chdir(here)
    rootdir, inipath, values = pytests_choice(here, args)
    found = find(args)
    assert (found.rootdir, found.inipath) == (rootdir, inipath)
    assert found.values == values
    assert find(args, invocation_dir=here) == found


def test_values_are_read_with_pytests_rules_for_each_type(tmp_path: Path) -> None:
    ini = tmp_path / "tox.ini"
    ini.write_text(
        "[pytest]\n"
        "opswald_request_ignore =\n    input.params.seed\n\n    params.user\n"
        "opswald_side_effect_tools = send_email, 'charge card'\n"
        "opswald_langgraph_state = Yes\n"
        "pythonpath = src lib\n"
        "opswald_adapter = agent:run\n"
    )
    config = find([], config_file=ini)
    assert config.lines("opswald_request_ignore") == ["input.params.seed", "params.user"]
    assert config.args("opswald_side_effect_tools") == ["send_email,", "charge card"]
    assert config.flag("opswald_langgraph_state") is True
    assert config.paths("pythonpath") == [tmp_path / "src", tmp_path / "lib"]
    assert config.args("norecursedirs", projectconfig.NORECURSEDIRS) == list(
        projectconfig.NORECURSEDIRS
    )
    settings = projectconfig.cli_settings(config)
    assert settings.side_effect_tools == {"send_email", "charge card"}
    assert settings.adapter == "agent:run" and settings.adapter_root == tmp_path
    assert settings.integrations is None, "not set: the golden's recorded integrations"
    ini.write_text("[pytest]\nopswald_langgraph_state = maybe\n")
    with pytest.raises(SettingError) as info:
        projectconfig.cli_settings(find([], config_file=ini))
    assert str(info.value) == (
        f"{ini}: opswald_langgraph_state: invalid truth value 'maybe'; write true or false"
    )


@pytest.mark.skipif(not PYTEST_9, reason="[tool.pytest] native TOML came with pytest 9")
def test_native_toml_values(tmp_path: Path) -> None:
    toml = tmp_path / "pyproject.toml"
    toml.write_text(
        "[tool.pytest]\n"
        'opswald_request_normalize = ["\\\\d+ => <n>"]\n'
        "opswald_langgraph_state = true\n"
        'norecursedirs = ["drafts"]\n'
    )
    config = find([tmp_path])
    assert config.toml and config.inipath == toml
    assert config.lines("opswald_request_normalize") == ["\\d+ => <n>"]
    assert config.flag("opswald_langgraph_state") is True
    assert config.args("norecursedirs") == ["drafts"]
    toml.write_text('[tool.pytest]\nopswald_request_ignore = "params.seed"\n')
    with pytest.raises(SettingError, match="opswald_request_ignore: expects a list of strings"):
        find([tmp_path]).lines("opswald_request_ignore")
    # a true/false setting as a TOML string or number, read as the plugin reads it
    # (QA probe28 #4: the command refused what pytest's run took)
    for given, meant in (('"true"', True), ('"no"', False), ("1", True), ('"False"', False)):
        toml.write_text(f"[tool.pytest]\nopswald_langgraph_state = {given}\n")
        assert find([tmp_path]).flag("opswald_langgraph_state") is meant, given
    toml.write_text('[tool.pytest]\nopswald_langgraph_state = "maybe"\n')
    with pytest.raises(SettingError, match="invalid truth value 'maybe'; write true or false"):
        find([tmp_path]).flag("opswald_langgraph_state")
    toml.write_text("[tool.pytest]\nopswald_langgraph_state = [true]\n")
    with pytest.raises(SettingError, match="expects a bool"):
        find([tmp_path]).flag("opswald_langgraph_state")


@pytest.mark.parametrize(
    ("name", "text", "problem"),
    [
        ("setup.cfg", "[pytest]\nx = 1\n", "[pytest] section in setup.cfg files"),
        ("pyproject.toml", "[tool.pytest.ini_options\n", "pyproject.toml: "),
        ("pytest.ini", "[pytest]\n  indented first\n", "pytest.ini"),
    ],
)
def test_a_config_pytest_cannot_read_is_refused(
    tmp_path: Path, name: str, text: str, problem: str
) -> None:
    (tmp_path / name).write_text(text)
    with pytest.raises(SettingError, match=problem.replace("[", r"\[")):
        find([tmp_path])


def test_a_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(SettingError, match=r"nope\.ini: no such config file"):
        find([], config_file=tmp_path / "nope.ini")


def _monorepo(root: Path, config: tuple[str, str]) -> None:
    name, text = config
    for folder in ("tests", "services/a/goldens", "services/b/goldens", "goldens"):
        (root / folder).mkdir(parents=True)
    (root / name).write_text(text)


GOLDENS_LISTS = {
    "ini lines": (
        "pytest.ini",
        "[pytest]\nopswald_goldens =\n    services/b/goldens\n    goldens\n",
    ),
    "ini spaces": ("tox.ini", "[pytest]\nopswald_goldens = services/b/goldens goldens\n"),
    "pyproject list": (
        "pyproject.toml",
        '[tool.pytest.ini_options]\nopswald_goldens = ["services/b/goldens", "goldens"]\n',
    ),
    "pyproject string": (
        "pyproject.toml",
        '[tool.pytest.ini_options]\nopswald_goldens = "services/b/goldens goldens"\n',
    ),
}


@pytest.mark.parametrize("form", list(GOLDENS_LISTS))
def test_opswald_goldens_is_a_list_of_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, form: str
) -> None:
    _monorepo(tmp_path, GOLDENS_LISTS[form])
    monkeypatch.chdir(tmp_path)
    config = find([])
    paths, warnings = projectconfig.default_paths(config, tmp_path)
    assert paths == [tmp_path], "no testpaths: the rootdir, the folders in it"
    assert warnings == []
    (tmp_path / GOLDENS_LISTS[form][0]).write_text(
        GOLDENS_LISTS[form][1].replace("opswald_goldens", "testpaths = tests\nopswald_goldens")
        if form.startswith("ini")
        else GOLDENS_LISTS[form][1] + "testpaths = ['tests']\n"
    )
    paths, warnings = projectconfig.default_paths(find([]), tmp_path)
    assert paths == [tmp_path / "tests", tmp_path / "services/b/goldens", tmp_path / "goldens"]


def test_opswald_goldens_globs_missing_folders_and_duplicates(tmp_path: Path) -> None:
    for folder in ("packages/b/goldens", "packages/a/goldens", "packages/a/goldens/sub"):
        (tmp_path / folder).mkdir(parents=True)
    found = projectconfig.golden_folders(
        ["packages/*/goldens", "nowhere", "old/*", "goldens", "packages/a/goldens/sub"], tmp_path
    )
    assert found.paths == [
        tmp_path / "packages/a/goldens",
        tmp_path / "packages/b/goldens",
        tmp_path / "packages/a/goldens/sub",
    ]
    assert found.missing == ["nowhere"], "the default `goldens` missing stays silent"
    assert found.unmatched == ["old/*"]
    assert found.warnings(tmp_path) == [
        f"opswald_goldens = nowhere: no such file or folder under {tmp_path}; no goldens are "
        "collected from it"
    ], "a pattern matching nothing is quiet while others find something (as testpaths)"
    assert projectconfig.outermost(found.paths) == found.paths[:2]
    assert projectconfig.outermost(found.paths, [tmp_path / "packages" / "b"]) == found.paths[:1]
    nothing = projectconfig.golden_folders(["old/*", "older/**/goldens"], tmp_path)
    assert nothing.warnings(tmp_path) == [
        f"opswald_goldens = old/* older/**/goldens: no files or folders match under {tmp_path}; "
        "no goldens are collected from it"
    ]


def test_opswald_goldens_in_a_subfolder_is_that_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As pytest run in a subfolder of the rootdir collects that folder only."""
    _monorepo(tmp_path, ("pytest.ini", "[pytest]\nopswald_goldens = services/*/goldens nope\n"))
    here = tmp_path / "services" / "a"
    monkeypatch.chdir(here)
    assert projectconfig.default_paths(find([]), here) == ([here], [])


@pytest.mark.skipif(not PYTEST_9, reason="[tool.pytest] native TOML came with pytest 9")
def test_opswald_goldens_in_native_toml_is_a_list(tmp_path: Path) -> None:
    _monorepo(
        tmp_path,
        (
            "pytest.toml",
            '[pytest]\ntestpaths = ["tests"]\nopswald_goldens = ["services/*/goldens"]\n',
        ),
    )
    paths, _ = projectconfig.default_paths(find([], invocation_dir=tmp_path), tmp_path)
    assert paths == [
        tmp_path / "tests",
        tmp_path / "services/a/goldens",
        tmp_path / "services/b/goldens",
    ]
    (tmp_path / "pytest.toml").write_text('[pytest]\nopswald_goldens = "services/a/goldens"\n')
    with pytest.raises(SettingError, match="opswald_goldens: expects a list of strings"):
        projectconfig.default_paths(find([], invocation_dir=tmp_path), tmp_path)
