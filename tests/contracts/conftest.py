"""tests/contracts: pure tests of the ledger's wire formats here, ape tests under ape/.

The ape tests need ape's pytest plugin (its ``accounts``, ``chain`` and ``project`` fixtures
and the EthTester network), which the rest of the suite turns off with ``-p no:ape_test``; so
without the plugin they are left out here, and ``ape test tests/contracts`` runs them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

APE_TESTS = Path(__file__).parent / "ape"


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if config.pluginmanager.has_plugin("ape_test"):
        return None
    if collection_path == APE_TESTS or APE_TESTS in collection_path.parents:
        return True
    return None
