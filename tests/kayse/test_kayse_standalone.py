"""The Kayse client and the sandboxes (Kayse, Axiomatic) stand alone: each imports nothing else of the pipeline.

So either can be lifted out (or read) on its own, the client's errors carry no exit codes, and
a misreading of the API cannot hide in shared code. Read from the source with `ast`, so an
import inside a function counts as much as one at the top.
"""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline import settings
from pipeline.kayse import KayseClient, key_fingerprint
from pipeline.sandbox import gate

PIPELINE = Path(__file__).resolve().parents[2] / "pipeline"
ROOT = PIPELINE.parent


def imported_modules(path: Path, package: str | None = None) -> set[str]:
    """Every absolute module name a file imports; relative imports are resolved against
    `package` (by default the package the file lives in)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    if package is None:
        package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


@pytest.mark.parametrize("package", ["kayse", "sandbox", "axiomatic_sandbox"])
def test_package_imports_nothing_else_of_the_pipeline(package: str) -> None:
    files = sorted((PIPELINE / package).rglob("*.py"))
    assert files
    own = f"pipeline.{package}"
    outside = {
        f"{path.relative_to(ROOT)}: {name}"
        for path in files
        for name in imported_modules(path)
        if (name == "pipeline" or name.startswith("pipeline."))
        and not (name == own or name.startswith(own + "."))
    }
    assert not outside, sorted(outside)


def test_the_checker_sees_every_kind_of_import(tmp_path: Path) -> None:
    """Guards the guard: a late import, an `import pipeline.x` and a relative import all show."""
    assert "pipeline.kayse.client.KayseClient" in imported_modules(PIPELINE / "kayse" / "__init__.py")
    probe = tmp_path / "probe.py"
    probe.write_text(
        "def f():\n    import pipeline.model\n    from pipeline import run\nfrom ..ledger import Ledger\n"
    )
    assert {"pipeline.model", "pipeline.run", "pipeline.ledger"} <= imported_modules(probe, "pipeline.kayse")


def test_only_the_package_reaches_into_the_client_submodules() -> None:
    """Everyone else imports `from pipeline.kayse import ...`: the submodules may move.

    The client's own unit tests (tests/kayse) may test pure helpers that are not exported.
    """
    offenders = {
        f"{path.relative_to(ROOT)}: {name}"
        for top in ("pipeline", "tests", "bench")
        for path in sorted((ROOT / top).rglob("*.py"))
        if not path.is_relative_to(PIPELINE / "kayse") and not path.is_relative_to(ROOT / "tests" / "kayse")
        for name in imported_modules(path)
        if name.startswith("pipeline.kayse.") and name.split(".")[2] not in _exported_names()
    }
    assert not offenders, sorted(offenders)


def _exported_names() -> set[str]:
    import pipeline.kayse

    return set(pipeline.kayse.__all__)


@given(st.text(min_size=1, max_size=80))
def test_client_settings_and_sandbox_compute_the_same_fingerprint(key: str) -> None:
    expected = "sha256:" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:12]
    assert key_fingerprint(key) == expected
    assert settings.key_fingerprint(key) == expected
    assert gate.key_fingerprint(key) == expected


def test_the_sandbox_logs_the_fingerprint_the_client_prints(sandbox: Any, kayse: KayseClient) -> None:
    kayse.metadata.objects()
    logged = [entry["key"] for entry in sandbox.request_log()]
    assert logged == [kayse.key_fingerprint]
    assert repr(kayse).endswith(f"key={logged[0]})")
