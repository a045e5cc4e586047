"""A local Kayse-compatible API server for rehearsals, the demo and the tests.

It shares no code with the HTTP client in `pipeline.kayse`, and imports nothing else of the
pipeline, so a misreading of the API cannot hide in both. Start it with `kayse-etl sandbox`, or
from Python with `pipeline.sandbox.server.start_in_thread(SandboxConfig(...))`. See the README,
"The sandbox".
"""

from pipeline.sandbox.config import DEMO_KEY, SandboxConfig
from pipeline.sandbox.errors import SandboxError

__all__ = ["DEMO_KEY", "SandboxConfig", "SandboxError"]
