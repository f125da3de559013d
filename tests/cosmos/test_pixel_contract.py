"""The pixel-model contract: whole frames in, generated frames cropped, re-encoded and scored."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from dfbench.adapters.copy_last import CopyLast
from dfbench.adapters.pixel import PixelContext, PixelWorldModel, sample_generators
from dfbench.adapters.spec import PixelInput, spread_context
from dfbench.config import load_protocol
from dfbench.data.base import Clip
from dfbench.errors import DfbenchError
from dfbench.evaluate import Evaluator
from dfbench.features import load_feature_space
from dfbench.pixels import fit_size, prepare_frames, unpad
from dfbench.result_store import latest_result_path

README = Path(__file__).resolve().parents[2] / "README.md"


class HoldLast(PixelWorldModel):
    """Repeats the last input frame: in feature space it must be exactly copy-last."""

    name = "hold-last"
    pixel_input = PixelInput(height=72, width=144, num_frames=5, context_map=spread_context(5))

    def generate(self, context: PixelContext, target_timestamps: torch.Tensor, num_samples: int) -> torch.Tensor:
        last = context.frames[:, -1]
        return last[:, None, None].expand(-1, 1, target_timestamps.shape[1], -1, -1, -1).clone()


class Noisy(HoldLast):
    """Adds per-clip noise: what a clip gets must not depend on its batch."""

    name = "noisy"
    stochastic = True

    def generate(self, context, target_timestamps, num_samples):
        held = super().generate(context, target_timestamps, num_samples).float()
        noise = torch.stack([torch.randn(num_samples, *held.shape[2:], generator=g) for g in context.generators])
        return (held + 40 * noise).clamp(0, 255).to(torch.uint8)


class WrongCount(HoldLast):
    name = "wrong-count"

    def generate(self, context, target_timestamps, num_samples):
        return super().generate(context, target_timestamps, num_samples)[:, :, :1]


@pytest.fixture(scope="module")
def tiny():
    return load_feature_space("tiny")


def _clip(tiny, seed: int, name: str) -> Clip:
    frames = load_protocol().clip_length
    pixels = torch.randint(0, 256, (frames, 3, tiny.frame_size, 2 * tiny.frame_size - 2), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(seed))
    return Clip(name, pixels, torch.arange(frames, dtype=torch.float32) / 10)


def _forecast(model, tiny, clips, samples=1):
    evaluator = Evaluator(model, tiny, {}, load_protocol(), num_samples=samples, horizons=["short", "mid"])
    encoded = [evaluator.encode(c) for c in clips]
    return {w.horizon_name: evaluator.forecast(encoded, w) for w in evaluator.windows()}


def test_holding_the_last_frame_in_pixels_scores_as_copy_last(tiny):
    clips = [_clip(tiny, 0, "a"), _clip(tiny, 1, "b")]
    pixels, features = _forecast(HoldLast(tiny), tiny, clips), _forecast(CopyLast(tiny), tiny, clips)
    for horizon in ("short", "mid"):
        torch.testing.assert_close(pixels[horizon]["single"], features[horizon]["single"])


def test_a_clips_samples_do_not_depend_on_its_batch(tiny):
    a, b = _clip(tiny, 0, "a"), _clip(tiny, 1, "b")
    alone = _forecast(Noisy(tiny), tiny, [a], samples=3)["mid"]
    together = _forecast(Noisy(tiny), tiny, [b, a], samples=3)["mid"]
    torch.testing.assert_close(together["best"][2:], alone["best"])
    assert not torch.equal(together["best"][:2], alone["best"])


def test_wrong_frame_count_is_one_line(tiny):
    with pytest.raises(DfbenchError, match=r"wrong-count.*expected uint8 \(1, 1, 3, 3, 72, 144\)"):
        _forecast(WrongCount(tiny), tiny, [_clip(tiny, 0, "a")])


def test_frames_are_resized_padded_and_recovered():
    paper = PixelInput(height=640, width=1024, num_frames=9, context_map=spread_context(9), short_side=640)
    assert fit_size(512, 1024, paper, 512) == (512, 1024)  # KITTI at 1:2 fits the width
    assert fit_size(512, 683, paper, 512) == (640, 854)  # 4:3 frames: short side 640
    frames = torch.randint(0, 256, (2, 3, 30, 40), dtype=torch.uint8)
    small = PixelInput(height=32, width=48, num_frames=2, context_map=(2, 3))
    padded, valid = prepare_frames(frames, small, 30)
    assert padded.shape == (2, 3, 32, 48) and valid == (30, 40) and padded[..., 30:, :].eq(0).all()
    assert torch.equal(unpad(padded, valid, (30, 40)), frames)


def test_context_maps_and_sample_generators():
    assert spread_context(5) == (0, 0, 1, 2, 3)
    assert spread_context(9, stride=2) == (0, 0, 0, 0, 1, 1, 2, 2, 3)
    with pytest.raises(DfbenchError, match="context_map"):
        PixelInput(height=8, width=8, num_frames=3, context_map=(0, 1))
    first = [g.initial_seed() for g in sample_generators(torch.Generator().manual_seed(5), 4)]
    again = [g.initial_seed() for g in sample_generators(torch.Generator().manual_seed(5), 4)]
    assert first == again and len(set(first)) == 4


def _readme_example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    (block,) = [b for b in blocks if "PixelWorldModel" in b]
    return block


def test_readme_pixel_example_registers_and_runs(dfbench_cli, tmp_path):
    exec(compile(_readme_example(), "README.md", "exec"), {})
    result = dfbench_cli("run", "--model", "linear-pixels", "--dataset", "synthetic", "--limit", "2",
                         "--num-samples", "3", "--output-dir", str(tmp_path), "--no-progress")
    assert result.code == 0, result.err
    payload = json.loads(latest_result_path(tmp_path, "synthetic", "linear-pixels").read_text())
    assert {m["stat"] for m in payload["metrics"]} == {"best", "mean", "ensemble"}
    pixel_input = payload["provenance"]["pixel_input"]  # how the model saw the context
    assert pixel_input["num_frames"] == len(pixel_input["context_map"]) and max(pixel_input["context_map"]) == 3
