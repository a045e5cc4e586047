"""The house's import rules, checked from the source (see README, "The flow").

The stages know only the vocabulary (`pipeline.model`) and their own package; load also its
client, the ledger and progress; the CLI reaches the stages only through `pipeline.run` and
renders through `pipeline.report`. A wrong import fails here, with the file and the name.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PIPELINE = ROOT / "pipeline"

# stage → (its files, what it may import of the pipeline besides pipeline.model and itself)
STAGES: dict[str, tuple[list[Path], set[str]]] = {
    "pipeline.extract": (sorted((PIPELINE / "extract").rglob("*.py")), set()),
    "pipeline.mapping": ([PIPELINE / "mapping.py"], set()),
    "pipeline.validate": (sorted((PIPELINE / "validate").rglob("*.py")), set()),
    "pipeline.plan": ([PIPELINE / "plan.py"], set()),
    "pipeline.load": ([PIPELINE / "load.py"], {"pipeline.kayse", "pipeline.ledger", "pipeline.progress"}),
    "pipeline.report": (sorted((PIPELINE / "report").rglob("*.py")), set()),
    # notify and crm act on Kayse after a load, beside the flow: the client and the ledger only
    "pipeline.notify": ([PIPELINE / "notify.py"], {"pipeline.kayse", "pipeline.ledger"}),
    "pipeline.crm": ([PIPELINE / "crm.py"], set()),
}


def pipeline_imports(path: Path) -> set[str]:
    """The top two levels (`pipeline.x`) of every pipeline module a file imports, late ones too."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                modules = [".".join([*base, node.module] if node.module else base)]
            else:
                modules = [node.module or ""]
            if modules == ["pipeline"]:  # from pipeline import run
                modules = [f"pipeline.{alias.name}" for alias in node.names]
        else:
            continue
        names.update(".".join(m.split(".")[:2]) for m in modules if m.startswith("pipeline"))
    return names


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_a_stage_imports_only_the_vocabulary_and_itself(stage: str) -> None:
    files, extra = STAGES[stage]
    assert files, stage
    allowed = {stage, "pipeline.model", *extra}
    wrong = {
        f"{path.relative_to(ROOT)}: {name}"
        for path in files
        for name in pipeline_imports(path)
        if name not in allowed
    }
    assert not wrong, sorted(wrong)


def test_the_cli_reaches_the_stages_only_through_run() -> None:
    """The client's error types may be named in `cli.main`'s exit-code table; nothing else of it."""
    stages = set(STAGES) | {"pipeline.ledger"}
    wrong = pipeline_imports(PIPELINE / "cli.py") & stages - {"pipeline.report"}
    assert not wrong, sorted(wrong)


def test_the_checker_sees_late_and_from_imports(tmp_path: Path) -> None:
    """Guards the guard: `from pipeline import run` and an import inside a function both count."""
    probe = PIPELINE / "report" / "probe_for_test.py"
    try:
        probe.write_text("from pipeline import run\ndef f():\n    import pipeline.plan.x\n")
        assert pipeline_imports(probe) == {"pipeline.run", "pipeline.plan"}
    finally:
        probe.unlink()
