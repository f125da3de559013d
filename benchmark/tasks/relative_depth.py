"""Relative depth on DINO-Foresight's 256-level scale, with its nine metrics.

The targets are 8-bit per-image min-max-normalised relative disparity (0 = invalid), the
prediction is the argmax bin index itself (FACTS.md, sections 1 and 10). Statistics are sums
over valid pixels, so the default numbers are pixel-pooled over the data set and do not
depend on batching. The official code instead averages per-batch values; ``official_mean``
reproduces that from the same per-clip sums for a given batch size and device count.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from dfbench.tasks.base import MetricDef, Task

INVALID_RELATIVE_DEPTH = 0  # the minimum (farthest) level of every image, and unlabelled pixels
DEPTH_BINS = 256
# Sums over valid pixels; every metric is a function of them.
SUM_FIELDS = ("count", "d1", "d2", "d3", "abs_rel", "sq_rel", "sq_err", "log_sq", "log_err", "log10")
METRIC_NAMES = ("d1", "d2", "d3", "abs_rel", "sq_rel", "rmse", "rmse_log", "log_10", "silog")


def depth_sums(pred: torch.Tensor, gt: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-step sums [K] of bin predictions [K, h, w] (int) against 8-bit targets [K, h, w].

    Per-pixel terms are formed in float32 with the official dtypes (uint8 targets, int64
    predictions), then summed in float64.
    """
    valid = gt > INVALID_RELATIVE_DEPTH
    pred, gt = pred.long(), gt.to(torch.uint8)
    gt_f, pred_f = gt.float(), pred.float()
    thresh = torch.maximum(gt / pred, pred / gt)
    diff = (gt - pred).float()
    err = torch.log(pred_f) - torch.log(gt_f)
    terms = {
        "count": torch.ones_like(gt_f),
        "d1": (thresh < 1.25).float(),
        "d2": (thresh < 1.25**2).float(),
        "d3": (thresh < 1.25**3).float(),
        "abs_rel": diff.abs() / gt_f,
        "sq_rel": diff.pow(2) / gt_f,
        "sq_err": diff.pow(2),
        "log_sq": err.pow(2),
        "log_err": err,
        "log10": (torch.log10(gt_f) - torch.log10(pred_f)).abs(),
    }
    return {name: torch.where(valid, term.double(), 0.0).sum(dim=(1, 2)) for name, term in terms.items()}


def depth_metrics(sums: dict[str, float], *, official: bool = True) -> dict[str, float]:
    """The nine metrics (fractions and 8-bit levels, as the official code reports them) from pooled sums.

    A prediction of bin 0 on a valid pixel makes rmse_log and log_10 infinite. silog is then
    NaN in the official code (inf - inf), which drops that batch from its mean; with
    ``official=False`` (the pixel-pooled default) it is inf instead, the spread of errors
    that include an infinite one, so one such pixel cannot silently vanish from a data set.
    No valid pixel gives NaN everywhere.
    """
    n = float(sums["count"])
    if n == 0:
        return {name: math.nan for name in METRIC_NAMES}
    mean = {key: float(sums[key]) / n for key in SUM_FIELDS if key != "count"}
    variance = mean["log_sq"] - mean["log_err"] ** 2
    return {
        "d1": mean["d1"],
        "d2": mean["d2"],
        "d3": mean["d3"],
        "abs_rel": mean["abs_rel"],
        "sq_rel": mean["sq_rel"],
        "rmse": math.sqrt(mean["sq_err"]),
        "rmse_log": math.sqrt(mean["log_sq"]),
        "log_10": mean["log10"],
        "silog": silog(variance, mean["log_sq"], official),
    }


def silog(variance: float, mean_log_sq: float, official: bool) -> float:
    if variance == variance:
        return 100 * math.sqrt(max(variance, 0.0))
    return math.nan if official or not math.isinf(mean_log_sq) else math.inf


def official_batches(num_clips: int, batch_size: int, devices: int = 1) -> list[list[int]]:
    """The clip indices of every validation batch of the official run, over all devices.

    Lightning's DistributedSampler (no shuffling) pads the clip list to a multiple of
    ``devices`` by repeating its first clips and deals them round-robin; each device then
    cuts its share into batches, the last possibly smaller (FACTS.md, section 12).
    """
    total = math.ceil(num_clips / devices) * devices
    order = list(range(num_clips))
    order += (order * math.ceil(total / max(num_clips, 1)))[: total - num_clips]
    batches = []
    for rank in range(devices):
        share = order[rank:total:devices]
        batches += [share[i : i + batch_size] for i in range(0, len(share), batch_size)]
    return batches


def official_mean(
    clip_sums: Sequence[dict[str, float] | None], batch_size: int, devices: int = 1
) -> dict[str, float]:
    """The official per-batch-averaged depth metrics from per-clip sums in data-set order.

    Each batch's metrics are computed from its pooled pixels, then averaged with weight 1 per
    batch; a NaN batch value (no valid pixel, or an undefined silog) is skipped, infinities
    are kept (torchmetrics ``MeanMetric`` with its default NaN handling).

    Args:
        clip_sums: per clip, its summed statistics (None for a clip without valid pixels).
        batch_size: the evaluation batch size per device (2 in the README).
        devices: the number of devices (8 in the README).
    """
    values: dict[str, list[float]] = {name: [] for name in METRIC_NAMES}
    for batch in official_batches(len(clip_sums), batch_size, devices):
        pooled = {key: 0.0 for key in SUM_FIELDS}
        for index in batch:
            if clip_sums[index] is not None:
                pooled = {key: pooled[key] + float(clip_sums[index][key]) for key in SUM_FIELDS}
        for name, value in depth_metrics(pooled).items():
            if value == value:
                values[name].append(value)
    return {name: (sum(v) / len(v) if v else math.nan) for name, v in values.items()}


class RelativeDepth(Task):
    """256 depth bins per pixel against 8-bit relative disparity; statistics are the sums of ``SUM_FIELDS``."""

    name: ClassVar[str] = "reldepth256"
    display: ClassVar[str] = "Relative depth"
    metrics: ClassVar[tuple[MetricDef, ...]] = (
        MetricDef("d1", "δ1", True, 1, "%"),
        MetricDef("d2", "δ2", True, 1, "%"),
        MetricDef("d3", "δ3", True, 1, "%"),
        MetricDef("abs_rel", "AbsRel", False, 3, ""),
        MetricDef("sq_rel", "SqRel", False, 2, "levels"),
        MetricDef("rel_rmse", "RMSE", False, 2, "levels"),
        MetricDef("rmse_log", "RMSE log", False, 3, ""),
        MetricDef("log_10", "log10", False, 3, ""),
        MetricDef("silog", "SILog", False, 2, ""),
    )
    ignore_value: ClassVar[int] = INVALID_RELATIVE_DEPTH
    head_family: ClassVar[str] = "dpt"

    def build_head(self, dim: int, num_classes: int) -> nn.Module:
        from dfbench.heads.dpt import DPTConfig, DPTHead

        return DPTHead(DPTConfig(num_classes=num_classes, in_channels=dim // 4))

    def valid(self, labels: torch.Tensor) -> torch.Tensor:
        return labels > self.ignore_value

    def statistics(self, outputs: torch.Tensor, labels: torch.Tensor, num_classes: int) -> list[dict[str, float] | None]:
        """Sums per step of argmax(outputs [K, bins, h, w]) against labels [K, h, w].

        Outputs smaller than the labels (a DPT head's 8x grid) are first upsampled to the
        label size by bicubic interpolation, as the official evaluation does.
        """
        sums = depth_sums(to_label_size(outputs, labels).argmax(dim=1), labels)
        counts = sums["count"].tolist()
        per_field = {key: value.tolist() for key, value in sums.items()}
        return [{key: per_field[key][k] for key in SUM_FIELDS} if counts[k] else None for k in range(len(counts))]

    def compute(self, stats: dict[str, Any]) -> dict[str, float]:
        """Pixel-pooled metrics; the δ thresholds in %, the rest as the official code reports them."""
        return as_reported(depth_metrics(stats, official=False))

    def training_loss(self, outputs: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, int]:
        """Cross-entropy over the bins on valid pixels: depth is trained as a 256-way classification."""
        valid = self.valid(labels)
        target = torch.where(valid, labels.long(), -100)
        return F.cross_entropy(to_label_size(outputs, labels), target, ignore_index=-100, reduction="sum"), int(valid.sum())


# Metric keys are global across tasks (tables key on them), so RMSE gets its own name here.
TASK_KEYS = {"rmse": "rel_rmse"}


def as_reported(metrics: dict[str, float]) -> dict[str, float]:
    """Official names and fractions -> the keys and units of ``RelativeDepth.metrics`` (δ in %)."""
    out = {TASK_KEYS.get(name, name): value * 100 if name in ("d1", "d2", "d3") else value for name, value in metrics.items()}
    return {metric.name: out[metric.name] for metric in RelativeDepth.metrics}


def to_label_size(outputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Head outputs [K, C, h, w] -> label size, bicubic (align_corners=False), when they differ."""
    if tuple(outputs.shape[-2:]) == tuple(labels.shape[-2:]):
        return outputs
    return F.interpolate(outputs, size=tuple(labels.shape[-2:]), mode="bicubic", align_corners=False)
