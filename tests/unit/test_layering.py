"""The tree shows the architecture and keeps it: every module imports, none runs up a
layer or in a circle, none passes 400 lines, and the wheel ships the schema."""

from __future__ import annotations

import importlib
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.layering import module_name, violations

SRC = Path(__file__).resolve().parents[2] / "src" / "offsite"
MODULES = sorted(module_name(SRC, p) for p in SRC.rglob("*.py") if p.name != "__main__.py")


@pytest.mark.parametrize("module", MODULES)
def test_every_module_imports(module: str) -> None:
    importlib.import_module(module)


def test_the_tree_keeps_the_layering_its_docstrings_state() -> None:
    assert violations(SRC) == []


def test_no_module_is_over_400_lines() -> None:
    long = {
        str(p.relative_to(SRC)): n
        for p in SRC.rglob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > 400
    }
    assert long == {}


@pytest.fixture
def planted(tmp_path: Path) -> Path:
    """A copy of the tree to plant imports in."""
    copy = tmp_path / "offsite"
    shutil.copytree(SRC, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def _plant(tree: Path, module: str, text: str) -> None:
    path = tree / module
    path.write_text(path.read_text(encoding="utf-8") + "\n" + text + "\n", encoding="utf-8")


@pytest.mark.parametrize(
    ("module", "text", "expected"),
    [
        pytest.param(
            "stream/readers.py",
            "from offsite.cli import main",
            "offsite.stream.readers imports offsite.cli: cli is a layer above stream",
            id="a package imports the command line",
        ),
        pytest.param(
            "names.py",
            "def f():\n    from offsite.sets.stored import StoredSet",
            "offsite.names imports offsite.sets.stored: sets is a layer above names",
            id="a helper imports the set format, inside a function",
        ),
        pytest.param(
            "storage/gh_artifacts.py",
            "from offsite.sets.stored import set_ids_of",
            "offsite.storage.gh_artifacts imports offsite.sets.stored: sets is a layer above storage",
            id="storage reads set ids from the set layer (the import this issue removed)",
        ),
        pytest.param(
            "stream/progress.py",
            "import importlib\nimportlib.import_module('offsite.sets.trust')",
            "offsite.stream.progress imports offsite.sets.trust: sets is a layer above stream",
            id="an import through importlib",
        ),
        pytest.param(
            "oci/layout.py",
            "from offsite.wal import names",
            "offsite.oci.layout imports offsite.wal.names: oci/ may not import wal (its docstring)",
            id="a package imports a unit of its own layer its docstring does not name",
        ),
    ],
)
def test_a_planted_back_import_is_found(
    planted: Path, module: str, text: str, expected: str
) -> None:
    _plant(planted, module, text)
    assert expected in violations(planted)


def test_a_planted_circle_is_found(planted: Path) -> None:
    _plant(planted, "urls.py", "from offsite.names import NAME")
    _plant(planted, "names.py", "import offsite.urls")
    assert "an import circle: offsite.names -> offsite.urls" in violations(planted)


def test_a_module_in_no_layer_and_a_package_saying_nothing_are_found(planted: Path) -> None:
    (planted / "helpers.py").write_text('"""New."""\n', encoding="utf-8")
    (planted / "stray").mkdir()
    (planted / "stray" / "__init__.py").write_text('"""Says nothing."""\n', encoding="utf-8")
    found = violations(planted)
    assert "helpers stands in no layer of offsite/__init__.py" in found
    assert "stray stands in no layer of offsite/__init__.py" in found
    assert "stray/__init__.py says nothing of what it may import" in found


def test_a_unit_in_two_layers_is_found(planted: Path) -> None:
    init = planted / "__init__.py"
    text = init.read_text(encoding="utf-8")
    init.write_text(text.replace("    cli  ", "    cli stream  ", 1), encoding="utf-8")
    assert "stream stands in more than one layer" in violations(planted)


def test_a_docstring_allowing_a_higher_layer_is_found(planted: Path) -> None:
    init = planted / "crypto" / "__init__.py"
    text = init.read_text(encoding="utf-8")
    init.write_text(
        text.replace("May import: errors, stream.", "May import: errors, stream, sets.")
    )
    assert "crypto/ may import sets, a layer above it" in violations(planted)


@pytest.mark.slow
def test_the_wheel_ships_the_manifest_schema_from_its_place(tmp_path: Path) -> None:
    root = tmp_path / "project"  # built from a copy: setuptools writes build/ beside it
    root.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(SRC.parents[1] / name, root / name)
    shutil.copytree(
        SRC.parent, root / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    out = tmp_path / "wheel"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
         str(out), str(root)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (wheel,) = out.glob("offsite-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "offsite/sets/schemas/manifest.schema.json" in names
    assert not any(n.startswith("offsite/schemas/") for n in names)
    packaged = {n for n in names if n.endswith(".py")}
    assert packaged == {f"offsite/{p.relative_to(SRC)}" for p in SRC.rglob("*.py")}


def _layout_section() -> str:
    text = (SRC.parents[1] / "docs" / "contributing.md").read_text(encoding="utf-8")
    return text.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]


def test_the_manual_layout_names_every_package_and_only_what_the_tree_holds() -> None:
    section = _layout_section()
    root = SRC.parents[1]
    packages = {p.parent.name for p in SRC.glob("*/__init__.py")}
    folders = set(re.findall(r"`([A-Za-z_][\w./-]*)/`", section))
    assert packages <= folders, "packages the manual's Layout does not name"
    under = {p.name for p in SRC.rglob("*") if p.is_dir() and p.name != "__pycache__"}
    stray = {f for f in folders if f.rpartition("/")[2] not in under and not (root / f).is_dir()}
    assert stray == set(), "folders the manual's Layout names that the tree does not hold"
    files = set(re.findall(r"`([\w./]+\.py)`", section))
    every = {p.name for top in (SRC, root / "tests") for p in top.rglob("*.py")}
    missing = {
        f for f in files
        if not any((base / f).exists() for base in (SRC, SRC.parent, root))
        and not ("/" not in f and f in every)
    }  # fmt: skip
    assert missing == set(), "modules the manual's Layout names that the tree does not hold"
