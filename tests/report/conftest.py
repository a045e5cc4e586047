"""Fixtures for the report tests: the committed samples, regenerated and validated once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.generate import GeneratedExport
from bench.make_samples import SAMPLE_DIR, make_samples
from pipeline import run
from pipeline.model import ValidationResult
from pipeline.report.validation import write_validation_report

ROOT = Path(__file__).resolve().parents[2]
GENERIC_MAPPING = ROOT / "mappings" / "generic.yaml"
LEGALEDGE_MAPPING = ROOT / "mappings" / "legaledge.yaml"


@pytest.fixture(scope="session")
def regenerated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, GeneratedExport]]:
    """The samples made afresh in a temp dir, with the generator's record of every defect."""
    out = tmp_path_factory.mktemp("samples")
    return out, make_samples(out)


@pytest.fixture(scope="session")
def manifest(regenerated: tuple[Path, dict[str, GeneratedExport]]) -> dict[str, GeneratedExport]:
    return regenerated[1]


@pytest.fixture(scope="session")
def csv_result() -> ValidationResult:
    return run.validate([SAMPLE_DIR / "leads.csv"], GENERIC_MAPPING)


@pytest.fixture(scope="session")
def xlsx_result() -> ValidationResult:
    return run.validate([SAMPLE_DIR / "leads.xlsx"], GENERIC_MAPPING)


@pytest.fixture(scope="session")
def legaledge_result() -> ValidationResult:
    return run.validate([SAMPLE_DIR / "legaledge_matters.csv"], LEGALEDGE_MAPPING)


@pytest.fixture(scope="session")
def csv_report(csv_result: ValidationResult, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("report-csv")
    write_validation_report(csv_result, folder)
    return folder


@pytest.fixture(scope="session")
def xlsx_report(xlsx_result: ValidationResult, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("report-xlsx")
    write_validation_report(xlsx_result, folder)
    return folder


@pytest.fixture(scope="session")
def legaledge_report(legaledge_result: ValidationResult, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("report-legaledge")
    write_validation_report(legaledge_result, folder)
    return folder
