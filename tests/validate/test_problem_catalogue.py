"""The one catalogue of problems: every code the code base emits has its words, every message renders."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import polars as pl
import pytest

from bench.generate import write_generic_export
from pipeline.extract import read_sources
from pipeline.mapping import apply_mapping, load_mapping
from pipeline.model import PROBLEMS, Problem, problem
from pipeline.validate import normalize, validate

ROOT = Path(__file__).resolve().parents[2]
PIPELINE = ROOT / "pipeline"
# The HTTP client and the fake Kayse speak the API's own error codes, which are not ours.
OWN_SOURCES = sorted(
    path for path in PIPELINE.rglob("*.py") if path.relative_to(PIPELINE).parts[0] not in ("kayse", "sandbox")
)


def _parsed(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _problem_calls(tree: ast.AST) -> list[ast.Call]:
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and (
            (isinstance(node.func, ast.Name) and node.func.id == "problem")
            or (isinstance(node.func, ast.Attribute) and node.func.attr == "problem")
        )
    ]


def _reasons_table(tree: ast.Module) -> ast.AST | None:
    for node in tree.body:
        if isinstance(node, ast.AnnAssign | ast.Assign):
            targets = [node.target] if isinstance(node, ast.AnnAssign) else node.targets
            if any(isinstance(t, ast.Name) and t.id == "REASONS" for t in targets):
                return node.value
    return None


def test_the_scan_sees_the_stages() -> None:
    names = {path.relative_to(PIPELINE).as_posix() for path in OWN_SOURCES}
    assert {"validate/core.py", "extract/_frame.py", "report/validation.py", "model.py"} <= names


def test_every_code_passed_to_problem_is_in_the_catalogue() -> None:
    used: set[str] = set()
    for path in OWN_SOURCES:
        for call in _problem_calls(_parsed(path)):
            if call.args and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str):
                code = call.args[0].value
                assert code in PROBLEMS, f"{path.relative_to(ROOT)}:{call.lineno}: {code!r} has no words"
                used.add(code)
    assert {"ragged-row", "duplicate-case-id", "conflicting-contact"} <= used


def test_no_code_is_spelled_outside_the_catalogue() -> None:
    """A code written as a bare string (not through problem()) could drift from its words."""
    strays: list[str] = []
    for path in OWN_SOURCES:
        if path == PIPELINE / "model.py":
            continue  # where the catalogue is defined
        tree = _parsed(path)
        allowed: set[int] = set()
        for call in _problem_calls(tree):
            allowed |= {id(node) for node in call.args}
        table = _reasons_table(tree)
        if table is not None:  # the normalizers' reasons, checked by the next test
            allowed |= {id(node) for node in ast.walk(table)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value in PROBLEMS and id(node) not in allowed:
                strays.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value!r}")
    assert strays == [], "use problem(code) instead of the bare code"


def test_every_reason_of_the_normalizers_names_a_problem_and_one_of_its_messages() -> None:
    for reason, (code, variant) in normalize.REASONS.items():
        assert problem(code).template_for(variant), reason
    # Every variant in the catalogue is reachable from some reason.
    reachable = {(code, variant) for code, variant in normalize.REASONS.values()}
    for found in PROBLEMS.values():
        for variant in found.variants:
            assert (found.code, variant) in reachable, (found.code, variant)


@pytest.mark.parametrize("found", list(PROBLEMS.values()), ids=list(PROBLEMS))
def test_every_problem_has_words_and_its_messages_render(found: Problem) -> None:
    assert re.fullmatch(r"[a-z]+(-[a-z0-9]+)+", found.code)
    assert found.title and found.title != found.code and "{" not in found.title
    for variant in (None, *found.variants):
        names = found.placeholders(variant)
        values = {name: f"<{name}>" for name in names}
        text = found.message(variant=variant, **values)
        assert "{" not in text and "}" not in text
        assert all(value in text for value in values.values())
        # The vectorized message (one per row) says exactly the same.
        columns = {name: pl.lit(value) for name, value in values.items()}
        assert pl.select(found.expression(variant=variant, **columns)).item() == text


def test_an_unknown_code_or_variant_is_a_bug_not_a_key_error() -> None:
    with pytest.raises(ValueError, match=r"not in pipeline\.model\.PROBLEMS"):
        problem("no-such-problem")
    with pytest.raises(ValueError, match="no variant"):
        problem("invalid-date").message(variant="no-such", field="x", value="y")


def test_every_code_a_real_export_gets_is_in_the_catalogue(tmp_path: Path) -> None:
    export = write_generic_export(tmp_path / "leads.csv", 400, seed=5, defect_rate=0.2, ragged=True)
    spec = load_mapping(ROOT / "mappings" / "generic.yaml")
    result = validate(apply_mapping(read_sources([export.path]), spec), spec)
    emitted = set(result.rejects["code"].to_list()) | set(result.warnings["code"].to_list())
    assert emitted <= set(PROBLEMS)
    assert {"ragged-row", "duplicate-case-id", "conflicting-contact", "invalid-phone"} <= emitted
    for frame in (result.rejects, result.warnings):
        assert frame["message"].null_count() == 0
