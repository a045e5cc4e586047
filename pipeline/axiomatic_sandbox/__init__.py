"""A local Axiomatic CRM API for the extractor's tests and for rehearsals, written from the reference alone.

It imports nothing else of the pipeline, so a misreading of the API cannot hide in both the
extractor and its test server. Start it with `python -m pipeline.axiomatic_sandbox`, or from
Python with `start_in_thread(AxiomaticConfig(...))`. See the README, "The local Axiomatic".
"""

from pipeline.axiomatic_sandbox.config import (
    DEFAULT_ENVELOPES,
    DEMO_ENTITY,
    DEMO_KEY,
    OTHER_ENTITY,
    AxiomaticConfig,
    AxiomaticSandboxError,
    ConfigError,
)
from pipeline.axiomatic_sandbox.server import RunningAxiomatic, serve, start_in_thread

__all__ = [
    "DEFAULT_ENVELOPES",
    "DEMO_ENTITY",
    "DEMO_KEY",
    "OTHER_ENTITY",
    "AxiomaticConfig",
    "AxiomaticSandboxError",
    "ConfigError",
    "RunningAxiomatic",
    "serve",
    "start_in_thread",
]
