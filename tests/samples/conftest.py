"""Fixtures for the sample-data tests: the committed samples regenerated once per session."""

from __future__ import annotations

from tests.samples.generated import manifest, regenerated

__all__ = ["manifest", "regenerated"]
