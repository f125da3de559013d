"""Shared fixtures for the data set tests: generated trees in the real formats."""

from __future__ import annotations

from pathlib import Path

import pytest
from trees import KITTI_ODD, KITTI_SIZES, KITTI_WIDE, make_cityscapes_tree, make_kitti_tree, make_vspw_tree


@pytest.fixture(scope="session")
def eigen_test_list(reference_file) -> Path:
    return reference_file("kitti_eigen_test.txt")


@pytest.fixture(scope="session")
def cityscapes_tree(tmp_path_factory) -> tuple[Path, list[str]]:
    root = tmp_path_factory.mktemp("cityscapes")
    return root, make_cityscapes_tree(root)


@pytest.fixture(scope="session")
def vspw_tree(tmp_path_factory) -> Path:
    # 60 frames -> clips ending at positions 19, 39, 59; 45 -> 19, 39; 19 -> none.
    return make_vspw_tree(tmp_path_factory.mktemp("vspw"), {"1001_long": 60, "1002_short": 19, "1003_mid": 45})


@pytest.fixture(scope="session")
def kitti_tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("kitti")
    make_kitti_tree(
        root,
        {KITTI_WIDE: range(7, 24), KITTI_ODD: range(8, 21, 2)},
        sizes=KITTI_SIZES,
        depth_split={KITTI_WIDE: "val", KITTI_ODD: "train"},
    )
    return root
