"""The reference fixture and its networks, shared by the model tests."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="session")
def fixture_a(reference_file) -> dict:
    """tiny_fixture_a.pt: inputs, weights and outputs of the reference code at a tiny size."""
    return torch.load(reference_file("tiny_fixture_a.pt"), weights_only=True)
