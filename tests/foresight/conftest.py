"""Fixtures of the DINO-Foresight parity tests (helpers live in foresight_helpers.py)."""

from __future__ import annotations

import pytest

from foresight_helpers import Parts, build_parts, fixture_path, load_fixture


@pytest.fixture(scope="session")
def fx() -> dict:
    """The reference fixture; the tests skip when the default one is absent."""
    fixture = load_fixture()
    if fixture is None:
        pytest.skip(f"DINO-Foresight fixture {fixture_path()} not found (CI keeps ../shared beside the clone)")
    return fixture


@pytest.fixture(scope="session")
def parts(fx) -> Parts:
    """dfbench's feature space, predictor and heads with the fixture's weights."""
    return build_parts(fx)
