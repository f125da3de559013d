"""Clips per second of the Cityscapes, KITTI and VSPW loaders with 0, 1 and 2 workers.

Generates small trees at the real image sizes (Cityscapes 1024x2048 PNG, KITTI
375x1242 PNG with 16-bit depth, VSPW 480x853 JPEG) under a scratch folder, then times
one pass of :func:`dfbench.data.loader.clip_loader` over each. "first" is the time to
the first clip (worker start-up included), "steady" the rate over the remaining clips.

    python scripts/bench_loaders.py [--clips 8] [--workers 0 1 2] [--scratch /tmp/dfbench-bench]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

# The tree generators live with the tests, which use the same real formats.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "data"))
from trees import (  # noqa: E402
    CITYSCAPES_SIZE,
    KITTI_SIZE,
    VSPW_SIZE,
    kitti_split_line,
    make_cityscapes_tree,
    make_kitti_tree,
    make_vspw_tree,
    write_split_file,
)

from dfbench.data.cityscapes import CityscapesDataset  # noqa: E402
from dfbench.data.kitti import KittiDataset  # noqa: E402
from dfbench.data.loader import clip_loader  # noqa: E402
from dfbench.data.vspw import VspwDataset  # noqa: E402

KITTI_DRIVE = "2011_09_26_drive_0002_sync"


def build_trees(scratch: Path, clips: int) -> dict[str, object]:
    """Writes each tree once (reused when already there) and returns the data sets."""
    cityscapes_root = scratch / "cityscapes"
    if not (cityscapes_root / "gtFine").exists():
        # Only the 20 snippet frames up to the labelled one: the loader reads 7 of them.
        make_cityscapes_tree(cityscapes_root, cities=("frankfurt",), sequences=clips, size=CITYSCAPES_SIZE, snippet_frames=20)
    kitti_root = scratch / "kitti"
    last_frames = [19 + 2 * i for i in range(clips)]
    if not (kitti_root / "val").exists():
        make_kitti_tree(kitti_root, {KITTI_DRIVE: range(7, last_frames[-1] + 1)}, sizes={KITTI_DRIVE: KITTI_SIZE})
    split_file = write_split_file(scratch / "kitti_split.txt", [kitti_split_line(KITTI_DRIVE, f) for f in last_frames])
    vspw_root = scratch / "vspw" / "VSPW_480p"
    if not vspw_root.exists():
        make_vspw_tree(scratch / "vspw", {"bench_video": 20 * clips}, size=VSPW_SIZE, resource_forks=False)
    return {
        "cityscapes": CityscapesDataset(str(cityscapes_root)),
        "kitti": KittiDataset(str(kitti_root), split_file=str(split_file)),
        "vspw": VspwDataset(str(vspw_root)),
    }


def time_pass(dataset, workers: int) -> tuple[int, float, float]:
    """(clips, seconds to the first clip, seconds for the whole pass)."""
    start = time.perf_counter()
    first = None
    count = 0
    for batch in clip_loader(dataset, num_workers=workers, prefetch_factor=2 if workers else None):
        count += len(batch)
        if first is None:
            first = time.perf_counter() - start
    return count, first or 0.0, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--scratch", type=Path, default=Path("/tmp/dfbench-bench"))
    args = parser.parse_args()
    console = Console()
    with console.status("writing trees"):
        datasets = build_trees(args.scratch, args.clips)
    table = Table(title=f"clip loaders, {args.clips} clips each, 7 frames per clip")
    for column in ("data set", "frame size", "workers", "first clip s", "total s", "clips/s", "steady clips/s"):
        table.add_column(column, justify="right")
    sizes = {"cityscapes": CITYSCAPES_SIZE, "kitti": KITTI_SIZE, "vspw": VSPW_SIZE}
    for name, dataset in datasets.items():
        dataset.sample_ids()  # list the tree once, outside the timing
        for workers in args.workers:
            count, first, total = time_pass(dataset, workers)
            steady = (count - 1) / (total - first) if count > 1 and total > first else float("nan")
            height, width = sizes[name]
            table.add_row(name, f"{height}x{width}", str(workers), f"{first:.2f}", f"{total:.2f}", f"{count / total:.2f}", f"{steady:.2f}")
    console.print(table)


if __name__ == "__main__":
    main()
