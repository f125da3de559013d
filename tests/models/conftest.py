"""The reference fixture and its networks, shared by the model tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

# CI keeps ../shared beside the clone.
REFERENCE = Path(__file__).resolve().parents[2] / ".." / "shared" / "reference"
FIXTURE_A = REFERENCE / "tiny_fixture_a.pt"


@pytest.fixture(scope="session")
def fixture_a() -> dict:
    """tiny_fixture_a.pt: inputs, weights and outputs of the reference code at a tiny size."""
    if not FIXTURE_A.is_file():
        pytest.skip(f"reference fixture not found at {FIXTURE_A} (CI keeps ../shared beside the clone)")
    return torch.load(FIXTURE_A, weights_only=True)
