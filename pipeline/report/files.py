"""Writing report files: private (0600, in a 0700 folder we create) and all-or-nothing.

Reports hold names, phones and addresses, so nobody else on the machine may read them; and a
report is written to a temporary file next to its final name, then renamed, so a crash or a
full disk never leaves a half-written file that looks like a finished one.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700


def prepare_dir(report_dir: Path) -> Path:
    """Create the report folder (0700) if missing; an existing folder keeps its mode."""
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    return report_dir


@contextmanager
def private_file(path: Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it becomes `path` (0600) in one rename."""
    path = Path(path)
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)  # mkstemp made it 0600 already; writers reopen it by name
    temp = Path(temp_name)
    try:
        yield temp
        os.chmod(temp, FILE_MODE)  # a writer that replaced the file may have used the umask
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def write_private_text(path: Path, text: str) -> Path:
    with private_file(path) as temp:
        temp.write_text(text, encoding="utf-8")
    return path
