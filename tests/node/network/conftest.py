from __future__ import annotations

import pytest

from .netchain import copy_network, make_network


@pytest.fixture(scope="session")
def pristine(tmp_path_factory):
    """One seeded network (4 validators, an observer, an RPC node), made once; tests copy it."""
    directory = tmp_path_factory.mktemp("pristine") / "ta-net"
    make_network(directory)
    return directory


@pytest.fixture
def net(pristine, tmp_path):
    return copy_network(pristine, tmp_path / "ta-net")
