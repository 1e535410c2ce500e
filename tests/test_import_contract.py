"""The layering contract: the sandbox never imports the exporter, so it cannot hide its bugs."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


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


def test_the_tables_read_the_store_and_nothing_that_fetches() -> None:
    """exporter.tables builds from files: it imports no client, engine, dataset or runner."""
    fetching = ("exporter.client", "exporter.engine", "exporter.datasets", "exporter.runner")
    offenders = {
        path: sorted(n for n in names if n.startswith(fetching))
        for path, names in imported_modules(ROOT / "exporter" / "tables").items()
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def test_publish_reads_the_tables_and_nothing_above_or_that_fetches() -> None:
    """exporter.publish sits above tables and store: it imports no client, engine, dataset,
    runner or pipeline, and nothing that imports it (api, cli)."""
    above = ("exporter.client", "exporter.engine", "exporter.datasets", "exporter.runner",
             "exporter.pipeline", "exporter.api", "exporter.cli")  # fmt: skip
    offenders = {
        path: sorted(n for n in names if n.startswith(above))
        for path, names in imported_modules(ROOT / "exporter" / "publish").items()
    }
    assert {path: names for path, names in offenders.items() if names} == {}
