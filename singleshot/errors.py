"""The one base class of every error singleshot raises on bad input or an impossible request.

Each message is one line that names the file (or option) and the problem; the CLI prints it and exits 1, the
Python API lets it propagate. Subclasses say where it came from (``DataError``, ``CheckpointError``, ...).
"""

from __future__ import annotations


class SingleshotError(Exception):
    """Bad input or an impossible request; ``str(err)`` is a one-line message naming the file and the problem."""
