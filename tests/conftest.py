"""Shared fixtures: paths to data files and a few deterministic keys."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

DATA = Path(__file__).parent / "data"
CONTRACT_TESTS = Path(__file__).parent / "contracts" / "ape"


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """A bare `ape test` (no paths given) runs the contract tests, as `ape test tests/contracts/ape`
    does: the rest of the suite runs without ape's plugin (`make test`)."""
    if (config.args_source is pytest.Config.ArgsSource.TESTPATHS
            and config.pluginmanager.hasplugin("ape_test")
            and not (collection_path == CONTRACT_TESTS or CONTRACT_TESTS in collection_path.parents
                     or collection_path in CONTRACT_TESTS.parents)):
        return True
    return None


def load(name: str) -> Any:
    return json.loads((DATA / name).read_text())


def h(text: str) -> bytes:
    return bytes.fromhex(text.removeprefix("0x"))


@pytest.fixture
def data_dir() -> Path:
    return DATA
