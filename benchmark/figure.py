"""Forecast panels: a clip's context, its true future and each model's forecast maps.

The forecasts come from the evaluator's own forecast step (``Evaluator.forecast`` and
``aligned_outputs``), so a figure shows exactly what the table scores: the first square
crop, every target step of one horizon, each model's best sample and sample mean (or
its single forecast), through every task head of the data set. Drawing is
:mod:`dfbench.plots`, shared with the HTML report.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from dfbench.config import Protocol, load_protocol
from dfbench.data.base import Clip
from dfbench.evaluate import Evaluator, EncodedClip, encode_clip
from dfbench.features.base import FeatureSpace
from dfbench.heads.linear import features_to_map
from dfbench.plots import ClipPanels, Forecast, SampleStrip, forecast_figure, save_png
from dfbench.protocol import align_to_labels, windows
from dfbench.scoring import best_of

SHOWN_CROP = 0
STAT_ORDER = ("best", "mean", "single")


@dataclass
class PanelModel:
    """A model to draw: its display name, the adapter, and its sample count (1 if deterministic)."""

    display: str
    model: Any
    num_samples: int


def _maps(task: str, outputs: torch.Tensor) -> list[np.ndarray]:
    """Head outputs [K, C, h, w] -> one displayable map per step (classes, or metres)."""
    values = outputs.argmax(1) if task == "seg" else outputs[:, 0]
    return [v.cpu().numpy() for v in values]


def _strip(display: str, task: str, samples: torch.Tensor, encoded: EncodedClip, head: nn.Module,
           targets: list[int]) -> SampleStrip:
    """Every sample of the shown crop at the last step, and which one best-of-S picks."""
    crop_samples = samples[SHOWN_CROP].float()  # [S, K, N, D]
    truth = encoded.features[SHOWN_CROP, targets].to(crop_samples.device)
    _, index = best_of(crop_samples[None], truth[None])
    outputs = head(features_to_map(crop_samples[:, -1], encoded.grid)).float()
    label_size = tuple(encoded.halves[task].shape[-2:])
    aligned = align_to_labels(outputs, SHOWN_CROP, label_size, *encoded.frame_size)
    return SampleStrip(display, task, _maps(task, aligned), best=int(index[0]))


def _seconds(clip: Clip, last_context: int, target: int) -> str:
    delta = float(clip.timestamps[target] - clip.timestamps[last_context])
    return f"+{target - last_context} ({delta:.2f} s)"


@torch.no_grad()
def clip_panels(
    clip: Clip,
    space: FeatureSpace,
    heads: dict[str, nn.Module],
    models: list[PanelModel],
    title: str,
    class_names: list[str],
    protocol: Protocol | None = None,
    horizon: str = "mid",
    seed: int = 0,
    device: str = "cpu",
    strip_task: str = "seg",
) -> ClipPanels:
    """Forecasts one clip with every model and collects the maps to draw."""
    protocol = protocol or load_protocol()
    encoded = encode_clip(clip, space, torch.device(device))
    (window,) = windows(protocol.clip_length, protocol.context_length, {horizon: protocol.horizons[horizon]})
    context, targets = list(window.context), list(window.targets)
    rgb = [encoded.crops[SHOWN_CROP, t].permute(1, 2, 0).cpu().numpy() for t in context + targets]
    panels = ClipPanels(
        title=title,
        context=rgb[: len(context)],
        future=rgb[len(context):],
        steps=[_seconds(clip, context[-1], t) for t in targets],
        truth={task: list(encoded.halves[task][SHOWN_CROP][targets].numpy()) for task in heads},
        class_names=class_names,
    )
    strip_task = strip_task if strip_task in heads else next(iter(heads))
    for entry in models:
        evaluator = Evaluator(entry.model, space, heads, protocol, entry.num_samples, [horizon], seed=seed,
                              device=torch.device(device))
        # The evaluator's own step, kept in two halves: the strip needs every sample.
        samples, truth = evaluator.rollouts([encoded], window)
        scored = evaluator.score(samples, truth)
        for stat in (s for s in STAT_ORDER if s in scored):
            maps = {task: _maps(task, evaluator.aligned_outputs([encoded], window, task, scored[stat])[SHOWN_CROP])
                    for task in heads}
            panels.forecasts.append(Forecast(entry.display, stat, maps, entry.num_samples))
        if entry.model.stochastic:
            panels.strips.append(_strip(entry.display, strip_task, samples, encoded, heads[strip_task], targets))
    return panels


# ---------------------------------------------------------------- the demo figure


def demo_panels(models: list[str], num_samples: int = 20, device: str = "cpu", clip_index: int = 0) -> ClipPanels:
    """The demo clip's panels: every demo model on one synthetic validation clip, mid horizon."""
    from dfbench.features import load_feature_space
    from dfbench.heads.catalog import load_heads
    from dfbench.registry import get_dataset_class, get_dataset_spec, get_model_class, get_model_spec

    space = load_feature_space("tiny", device=device)
    dataset_cls = get_dataset_class("synthetic")
    dataset = dataset_cls(frame_size=space.frame_size)
    heads = {t: h.to(device) for t, h in load_heads("tiny", space.dim, "synthetic", dataset_cls.tasks).items()}
    sample_id = dataset.sample_ids()[clip_index]
    entries = []
    for name in models:
        cls = get_model_class(name)
        entries.append(PanelModel(get_model_spec(name).display, cls(space).to(device), num_samples if cls.stochastic else 1))
    title = f"{get_dataset_spec('synthetic').display} clip {sample_id}: context, truth and forecasts (first crop, mid horizon)"
    return clip_panels(dataset.load(sample_id), space, heads, entries, title, list(dataset.class_names), device=device)


def save_demo_figure(
    path: Path, models: list[str], num_samples: int = 20, device: str = "cpu", clip_index: int = 0
) -> Path:
    """Writes the demo PNG (see :func:`dfbench.plots.forecast_figure`) and returns its path."""
    return save_png(forecast_figure(demo_panels(models, num_samples, device, clip_index)), Path(path))
