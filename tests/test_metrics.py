"""Metrics from summed per-clip statistics equal torchmetrics fed batch by batch."""

import torch
from torchmetrics import MeanSquaredError
from torchmetrics.classification import MulticlassJaccardIndex

from dfbench.metrics import (
    ConfusionMIoU,
    GlobalRMSE,
    confusion_counts,
    miou_from_confusion,
    rmse_from_sums,
    squared_error_sum,
)


def _batches(seed, num_classes=5, n=4):
    g = torch.Generator().manual_seed(seed)
    for _ in range(n):
        logits = torch.randn(2, num_classes, 6, 7, generator=g)
        target = torch.randint(0, num_classes, (2, 6, 7), generator=g)
        target[torch.rand(2, 6, 7, generator=g) < 0.3] = 255
        yield logits, target


def test_miou_matches_multiclass_jaccard_accumulated_over_batches():
    reference = MulticlassJaccardIndex(5, ignore_index=255)
    total = torch.zeros(5, 5, dtype=torch.long)
    for logits, target in _batches(0):
        reference.update(logits, target)
        total += confusion_counts(logits, target, 5)
    assert abs(miou_from_confusion(total) - reference.compute().item()) < 1e-6


def test_miou_averages_only_classes_that_occur():
    # class 2 never appears in truth or prediction: it must not count as IoU 0
    reference = MulticlassJaccardIndex(3, ignore_index=255)
    logits = torch.tensor([[[[5.0, 0.0]], [[0.0, 5.0]], [[0.0, 0.0]]]])
    target = torch.tensor([[[0, 0]]])
    reference.update(logits, target)
    value = miou_from_confusion(confusion_counts(logits, target, 3))
    assert abs(value - reference.compute().item()) < 1e-6
    assert abs(value - 0.25) < 1e-9  # class 0: 1/2, class 1: 0/1


def test_rmse_is_pixel_weighted_over_the_dataset():
    reference = MeanSquaredError(squared=False)
    sse, count = 0.0, 0
    g = torch.Generator().manual_seed(1)
    for size in (3, 11):
        pred = torch.rand(size, size, generator=g) * 80
        target = torch.rand(size, size, generator=g) * 80
        target[torch.rand(size, size, generator=g) < 0.4] = 0
        valid = target > 0
        reference.update(pred[valid], target[valid])
        s, c = squared_error_sum(pred, target)
        sse, count = sse + s, count + c
    assert abs(rmse_from_sums(sse, count) - reference.compute().item()) < 1e-4


def test_metric_classes_sum_their_state():
    miou, rmse = ConfusionMIoU(3), GlobalRMSE()
    miou.update(torch.tensor([[2, 0, 0], [0, 1, 1], [0, 0, 0]]))
    miou.update(torch.tensor([[0, 0, 0], [0, 1, 0], [0, 0, 0]]))
    rmse.update(8.0, 2)
    rmse.update(12.0, 3)
    # class 2 is predicted once, so it counts with IoU 0
    assert abs(miou.compute().item() - (1.0 + 2 / 3 + 0.0) / 3) < 1e-6
    assert abs(rmse.compute().item() - 2.0) < 1e-9


def test_step_statistics_equal_the_per_step_torchmetrics_counts():
    from dfbench.metrics import step_confusions, step_squared_errors

    (logits, target), _ = list(_batches(3, n=2))
    per_step = step_confusions(logits, target)
    for k in range(logits.shape[0]):
        assert torch.equal(per_step[k], confusion_counts(logits[k : k + 1], target[k : k + 1], 5))
    depth = torch.rand(2, 1, 4, 5) * 80
    gt = torch.rand(2, 4, 5) * 80
    gt[0, :2] = 0
    sse, count = step_squared_errors(depth, gt)
    for k in range(2):
        s, c = squared_error_sum(depth[k, 0], gt[k])
        assert abs(sse[k].item() - s) < 1e-6 and count[k].item() == c
