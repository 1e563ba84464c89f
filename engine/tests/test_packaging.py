"""The engine as a package: engine/pyproject.toml builds a wheel offline, with the CLI's version,
dependency ranges (pins stay in requirements.txt), the `sparsegrid-engine` command and no tests.

The wheel is built from a copy of engine/ (setuptools writes build/ and *.egg-info next to the
sources it builds), tests included, so that leaving them out is the packaging's doing."""

import ast
import re
import shutil
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest
from conftest import ENGINE_ROOT

import sparsegrid_engine

REPO_ROOT = ENGINE_ROOT.parent
SETUPTOOLS_MIN = (70, 1)  # bdist_wheel moved into setuptools in 70.1


def cli_version() -> str:
    text = (REPO_ROOT / "Sources/sparsegrid/Version.swift").read_text()
    found = re.search(r'let sparsegridVersion = "([^"]+)"', text)
    assert found, "Sources/sparsegrid/Version.swift no longer declares sparsegridVersion"
    return found.group(1)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    import setuptools

    have = tuple(int(p) for p in re.findall(r"\d+", setuptools.__version__)[:2])
    if have < SETUPTOOLS_MIN:
        pytest.fail(
            f"setuptools {setuptools.__version__} in {sys.executable} cannot build wheels without the `wheel` "
            "package; run `make venv` (engine/requirements.txt pins setuptools)"
        )
    work = tmp_path_factory.mktemp("wheel")
    source = work / "engine"
    shutil.copytree(
        ENGINE_ROOT,
        source,
        ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache", ".ruff_cache", "build", "*.egg-info"),
    )
    assert (source / "tests" / "test_packaging.py").exists()
    out = work / "dist"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", str(source)]
        + ["-w", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"pip wheel failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    wheels = list(out.glob("*.whl"))
    assert len(wheels) == 1, f"expected one wheel in {out}, found {wheels}"
    return wheels[0]


def test_version_agrees_with_the_cli():
    assert sparsegrid_engine.__version__ == cli_version(), (
        "engine/sparsegrid_engine/__init__.py and Sources/sparsegrid/Version.swift disagree: "
        "the engine package carries the CLI's version"
    )


def test_wheel_metadata(wheel: Path):
    version = cli_version()
    assert wheel.name == f"sparsegrid_engine-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as z:
        meta = Parser().parsestr(z.read(f"sparsegrid_engine-{version}.dist-info/METADATA").decode())
        entry_points = z.read(f"sparsegrid_engine-{version}.dist-info/entry_points.txt").decode()
    assert meta["Name"] == "sparsegrid-engine"
    assert meta["Version"] == version
    assert meta["Requires-Python"] == ">=3.10"
    requires = meta.get_all("Requires-Dist") or []
    names = {re.match(r"[A-Za-z0-9_.-]+", r).group(0).lower(): r for r in requires}
    assert set(names) == {"torch", "torchvision", "numpy"}, requires
    for name, req in names.items():
        spec = req[len(name) :]
        assert "==" not in spec and "~=" not in spec, f"{req}: the package takes ranges; pins are for requirements.txt"
        assert ">=" in spec and "<" in spec.replace("<=", "<"), f"{req}: give a lower and an upper bound"
    assert re.search(
        r"^\[console_scripts\]\s*\nsparsegrid-engine = sparsegrid_engine\.__main__:main\s*$", entry_points, re.M
    ), entry_points


def test_wheel_holds_the_package_and_no_tests(wheel: Path):
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
    assert not [n for n in names if "tests/" in n or Path(n).name.startswith(("test_", "conftest"))], names
    tops = {n.split("/")[0] for n in names}
    assert tops == {"sparsegrid_engine", f"sparsegrid_engine-{cli_version()}.dist-info"}, tops
    modules = {f"sparsegrid_engine/{p.name}" for p in (ENGINE_ROOT / "sparsegrid_engine").glob("*.py")}
    assert modules <= set(names), f"missing from the wheel: {sorted(modules - set(names))}"


def test_every_runtime_import_is_a_declared_dependency(wheel: Path):
    """A module the package imports is the standard library's, its own, or in Requires-Dist."""
    with zipfile.ZipFile(wheel) as z:
        meta = Parser().parsestr(z.read(f"sparsegrid_engine-{cli_version()}.dist-info/METADATA").decode())
    declared = {re.match(r"[A-Za-z0-9_.-]+", r).group(0).lower() for r in meta.get_all("Requires-Dist") or []}
    imported: set[str] = set()
    for path in (ENGINE_ROOT / "sparsegrid_engine").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    third_party = {m for m in imported if m not in sys.stdlib_module_names and m != "sparsegrid_engine"}
    assert third_party <= declared, f"imported but not declared in engine/pyproject.toml: {third_party - declared}"


def test_main_returns_an_exit_code(tmp_path: Path):
    """The console script calls main(): it returns the status instead of exiting."""
    from sparsegrid_engine.__main__ import EXIT_FAILED, main

    assert main(["check", "--task", str(tmp_path / "missing.json")]) == EXIT_FAILED
