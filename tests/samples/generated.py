"""Fixtures shared by the sample-data and report tests: the samples made afresh, once per session.

Imported by the conftest.py of each folder that needs them (a fixture module, not a test module).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.generate import GeneratedExport
from bench.make_samples import make_samples


@pytest.fixture(scope="session")
def regenerated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, GeneratedExport]]:
    """The samples made afresh in a temp dir, with the generator's record of every defect."""
    out = tmp_path_factory.mktemp("samples")
    return out, make_samples(out)


@pytest.fixture(scope="session")
def manifest(regenerated: tuple[Path, dict[str, GeneratedExport]]) -> dict[str, GeneratedExport]:
    return regenerated[1]
