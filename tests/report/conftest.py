"""Fixtures for the report tests: the committed samples validated (and regenerated) once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.make_samples import SAMPLE_DIR
from pipeline import run
from pipeline.model import ValidationResult
from pipeline.report.validation import write_validation_report
from tests.samples.generated import manifest, regenerated

__all__ = ["manifest", "regenerated"]

ROOT = Path(__file__).resolve().parents[2]
GENERIC_MAPPING = ROOT / "mappings" / "generic.yaml"
LEGALEDGE_MAPPING = ROOT / "mappings" / "legaledge.yaml"


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
