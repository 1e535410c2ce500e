"""The layering contract: each layer imports only those below it, and the sandbox never imports
the exporter, so it cannot hide its bugs."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Bottom to top: a module may import its own layer and those below, never one above. A module's
# layer is its longest listed prefix; every module must have one, so a new one is placed here.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("genesys_sandbox",),
    ("exporter", "exporter.errors", "exporter.logs", "exporter.progress", "exporter.usage",
     "exporter.regions", "exporter.windows", "exporter.signals"),
    ("exporter.store", "exporter.privacy", "exporter.gdpr"),
    ("exporter.datasets",),
    ("exporter.plan", "exporter.config_rules", "exporter.config"),
    ("exporter.client",),
    ("exporter.engine", "exporter.org"),
    ("exporter.tables", "exporter.bundled"),
    ("exporter.publish",),
    ("exporter.summary", "exporter.probe", "exporter.preview", "exporter.prune", "exporter.forget"),
    ("exporter.metrics", "exporter.lineage", "exporter.report"),
    ("exporter.runner",),
    ("exporter.pipeline",),
    ("exporter.api",),
    ("exporter.cli", "exporter.__main__"),
)  # fmt: skip


def imported_modules(package: Path) -> dict[str, set[str]]:
    """Every top-level module each file of ``package`` imports, by file."""
    found: dict[str, set[str]] = {}
    for path in sorted(package.rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module)
        found[path.relative_to(ROOT).as_posix()] = names
    return found


def layer_of(module: str) -> int | None:
    """The index in LAYERS of ``module``'s longest listed prefix; None for a third party's."""
    found = [
        (len(prefix), rank)
        for rank, prefixes in enumerate(LAYERS)
        for prefix in prefixes
        if module == prefix or module.startswith(prefix + ".")
    ]
    return max(found)[1] if found else None


def module_name(path: str) -> str:
    parts = Path(path).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_every_import_points_down_the_layers() -> None:
    """No module imports one of a layer above its own (lazy imports in functions included)."""
    upward: dict[str, list[str]] = {}
    for package in ("exporter", "genesys_sandbox"):
        for path, names in imported_modules(ROOT / package).items():
            own = layer_of(module_name(path))
            assert own is not None, f"{path} is in no layer: place it in LAYERS"
            above = sorted(n for n in names if (layer_of(n) or 0) > own)
            if above:
                upward[path] = above
    assert upward == {}


def test_the_layers_name_only_modules_that_exist() -> None:
    """A layer naming a module that is gone would let a new one of that name in unchecked."""
    modules = {
        module_name(path)
        for package in ("exporter", "genesys_sandbox")
        for path in imported_modules(ROOT / package)
    }
    listed = [prefix for prefixes in LAYERS for prefix in prefixes]
    assert [p for p in listed if not any(m == p or m.startswith(p + ".") for m in modules)] == []


def test_no_sandbox_module_imports_the_exporter() -> None:
    """No file of genesys_sandbox imports exporter, directly or by a submodule."""
    offenders = {
        path: sorted(n for n in names if n == "exporter" or n.startswith("exporter."))
        for path, names in imported_modules(ROOT / "genesys_sandbox").items()
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def test_the_sandbox_runs_with_the_exporter_unimportable() -> None:
    """Every sandbox module imports in a process where importing exporter fails."""
    script = (
        "import sys, pkgutil, importlib\n"
        "sys.modules['exporter'] = None\n"
        "import genesys_sandbox\n"
        "for info in pkgutil.walk_packages(genesys_sandbox.__path__, 'genesys_sandbox.'):\n"
        "    importlib.import_module(info.name)\n"
        "print('ok')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_the_client_imports_no_dataset_no_engine_and_no_store() -> None:
    """exporter.client is HTTP with no domain words: it imports none of the layers above."""
    above = ("exporter.datasets", "exporter.engine", "exporter.store", "exporter.runner")
    offenders = {
        path: sorted(n for n in names if n.startswith(above))
        for path, names in imported_modules(ROOT / "exporter" / "client").items()
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def test_the_engine_names_no_dataset() -> None:
    """The engine knows descriptions (datasets.base), never a dataset by its module."""
    concrete = ("exporter.datasets.conversations", "exporter.datasets.user_details",
                "exporter.datasets.listings")  # fmt: skip
    offenders = {
        path: sorted(n for n in names if n.startswith(concrete) or n == "exporter.datasets")
        for path, names in imported_modules(ROOT / "exporter" / "engine").items()
    }
    assert {path: names for path, names in offenders.items() if names} == {}
    for path in (ROOT / "exporter" / "engine").glob("*.py"):
        assert "conversationStart" not in path.read_text(), path


@pytest.mark.parametrize("package", ["tables", "publish"])
def test_the_tables_and_publish_read_files_and_nothing_that_fetches(package: str) -> None:
    """exporter.tables builds from files, exporter.publish ships what it built: neither imports
    a client, the engine, a dataset or the runner, so neither can touch Genesys."""
    fetching = ("exporter.client", "exporter.engine", "exporter.datasets", "exporter.runner")
    offenders = {
        path: sorted(n for n in names if n.startswith(fetching))
        for path, names in imported_modules(ROOT / "exporter" / package).items()
    }
    assert {path: names for path, names in offenders.items() if names} == {}
