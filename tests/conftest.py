"""Shared fixtures: paths to data files and a few deterministic keys."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

DATA = Path(__file__).parent / "data"


def load(name: str) -> Any:
    return json.loads((DATA / name).read_text())


def h(text: str) -> bytes:
    return bytes.fromhex(text.removeprefix("0x"))


@pytest.fixture
def data_dir() -> Path:
    return DATA
