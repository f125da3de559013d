"""Does batching clips through the backbone change features, and does it pay? Clips alone vs together.

Prints, per backbone and thread count, whether each clip's features from one call over
several clips equal (torch.equal) those of a call over that clip alone, the largest
difference, and the CPU seconds of both ways. Usage:
OMP_NUM_THREADS=1 python scripts/backbone_batch_bits.py [--vitb] [--clips 3] [--threads 1,2]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))


def frames(clips: int, frames_per_clip: int, side: int) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return [torch.randint(0, 256, (frames_per_clip, 3, side, side), generator=generator, dtype=torch.uint8)
            for _ in range(clips)]


@torch.no_grad()
def compare(space, clips: list[torch.Tensor]) -> tuple[bool, float, float, float]:
    """Equal?, largest difference, CPU seconds alone and together."""
    start = time.process_time()
    alone = [space.encode(c).float() for c in clips]
    middle = time.process_time()
    together = space.encode(torch.cat(clips)).float().split([c.shape[0] for c in clips])
    end = time.process_time()
    equal = all(torch.equal(a, b) for a, b in zip(alone, together))
    return equal, max(float((a - b).abs().max()) for a, b in zip(alone, together)), middle - start, end - middle


@click.command()
@click.option("--vitb", is_flag=True, help="Also a DINOv3 ViT-B/16 with random weights at 256 px.")
@click.option("--clips", type=int, default=3, show_default=True)
@click.option("--threads", default="1,2", show_default=True)
def main(vitb: bool, clips: int, threads: str) -> None:
    from dfbench.features import load_feature_space

    spaces = [("tiny", load_feature_space("tiny"), 64)]
    if vitb:
        from bench_components import feature_space

        spaces.append(("dinov3-vitb16 (random)", feature_space(torch.device("cpu"), 256), 256))
    for count in [int(t) for t in threads.split(",")]:
        torch.set_num_threads(count)
        for name, space, side in spaces:
            # 14 frames per clip: the two square crops of a 7-frame clip, as encode_clip passes them.
            equal, diff, alone, together = compare(space, frames(clips, 14, side))
            print(f"{name}: threads {count}, {clips} clips in one call vs alone: equal={equal} max|diff|={diff:.3g}, "
                  f"CPU s alone {alone:.2f}, together {together:.2f}", flush=True)


if __name__ == "__main__":
    main()
