"""Make the consensus simulation harness importable (pytest runs with --import-mode=importlib)."""

from __future__ import annotations

import sys
from pathlib import Path

HARNESS = str(Path(__file__).parents[1] / "consensus")
if HARNESS not in sys.path:
    sys.path.insert(0, HARNESS)
