"""The one implementation of each metric equals torchmetrics fed batch by batch.

Every path is checked against an independent reference over several batches: the
functional forms, the ``Metric`` classes (whose state is what processes would sum)
and the records path (Task.statistics -> to_json -> aggregate).
"""

import math

import torch
from torchmetrics import MeanSquaredError
from torchmetrics.classification import MulticlassJaccardIndex

from dfbench.metric_classes import ConfusionMIoU, GlobalRMSE
from dfbench.metrics import miou_from_confusion, rmse_from_sums, step_confusions, step_squared_errors
from dfbench.results import aggregate, stat_key
from dfbench.tasks import get_task

SEG, DEPTH = get_task("seg"), get_task("depth")
CLASSES = 5


def _seg_batches(seed, n=4, steps=3):
    g = torch.Generator().manual_seed(seed)
    for _ in range(n):
        logits = torch.randn(steps, CLASSES, 6, 7, generator=g)
        target = torch.randint(0, CLASSES, (steps, 6, 7), generator=g)
        target[torch.rand(steps, 6, 7, generator=g) < 0.3] = SEG.ignore_value
        yield logits, target


def _depth_batches(seed, n=4, steps=3):
    g = torch.Generator().manual_seed(seed)
    for size in range(3, 3 + n):
        pred = torch.rand(steps, 1, size, size + 1, generator=g) * 80
        target = torch.rand(steps, size, size + 1, generator=g) * 80
        target[torch.rand(steps, size, size + 1, generator=g) < 0.4] = DEPTH.ignore_value
        yield pred, target


def _records(task, batches):
    """One clip record per batch, through the evaluation's own statistics and JSON form."""
    records = []
    for outputs, labels in batches:
        stats = {}
        for step, step_stats in enumerate(task.statistics(outputs, labels, outputs.shape[1])):
            if step_stats is not None:
                key = stat_key(task.name, "short", step, "mean")
                stats[key] = step_stats if key not in stats else task.merge(stats[key], step_stats)
        records.append({"sample_id": str(len(records)), "stats": {k: task.to_json(v) for k, v in stats.items()}})
    return records


def test_miou_matches_multiclass_jaccard_on_every_path():
    reference = MulticlassJaccardIndex(CLASSES, ignore_index=SEG.ignore_value)
    per_step = [MulticlassJaccardIndex(CLASSES, ignore_index=SEG.ignore_value) for _ in range(3)]
    metric = ConfusionMIoU(CLASSES, SEG.ignore_value)
    total = torch.zeros(CLASSES, CLASSES, dtype=torch.long)
    for logits, target in _seg_batches(0):
        reference.update(logits, target)
        for k, ref in enumerate(per_step):
            ref.update(logits[k : k + 1], target[k : k + 1])
        metric.update(logits, target)
        total += step_confusions(logits, target, SEG.ignore_value).sum(0)
    expected = reference.compute().item()
    assert abs(miou_from_confusion(total) - expected) < 1e-6
    assert abs(metric.compute().item() - expected) < 1e-6
    entries = aggregate(_records(SEG, _seg_batches(0)), {"seg": CLASSES})
    assert [e["step"] for e in entries] == [0, 1, 2] and {e["metric"] for e in entries} == {"miou"}
    for entry, ref in zip(entries, per_step):
        assert abs(entry["value"] - 100.0 * ref.compute().item()) < 1e-4  # percent


def test_miou_averages_only_classes_that_occur():
    # class 2 never appears in truth or prediction: it must not count as IoU 0
    reference = MulticlassJaccardIndex(3, ignore_index=SEG.ignore_value)
    logits = torch.tensor([[[[5.0, 0.0]], [[0.0, 5.0]], [[0.0, 0.0]]]])
    target = torch.tensor([[[0, 0]]])
    reference.update(logits, target)
    value = miou_from_confusion(step_confusions(logits, target, SEG.ignore_value)[0])
    assert abs(value - reference.compute().item()) < 1e-6
    assert abs(value - 0.25) < 1e-9  # class 0: 1/2, class 1: 0/1


def test_rmse_matches_mean_squared_error_on_every_path():
    reference = MeanSquaredError(squared=False)
    per_step = [MeanSquaredError(squared=False) for _ in range(3)]
    metric = GlobalRMSE()
    sse, count = 0.0, 0
    for pred, target in _depth_batches(1):
        valid = DEPTH.valid(target)
        reference.update(pred[:, 0][valid], target[valid])
        for k, ref in enumerate(per_step):
            ref.update(pred[k, 0][valid[k]], target[k][valid[k]])
        metric.update(pred, target, valid)
        s, c = step_squared_errors(pred, target, valid)
        sse, count = sse + float(s.sum()), count + int(c.sum())
    expected = reference.compute().item()
    assert abs(rmse_from_sums(sse, count) - expected) < 1e-4
    assert abs(metric.compute().item() - expected) < 1e-4
    entries = aggregate(_records(DEPTH, _depth_batches(1)), {"depth": 1})
    assert [e["step"] for e in entries] == [0, 1, 2] and {e["metric"] for e in entries} == {"rmse"}
    for entry, ref in zip(entries, per_step):
        assert abs(entry["value"] - ref.compute().item()) < 1e-4  # metres


def test_rmse_is_pixel_weighted_not_a_mean_of_per_image_values():
    pred = torch.zeros(2, 1, 1, 4)
    target = torch.tensor([[[1.0, 0.0, 0.0, 0.0]], [[2.0, 2.0, 2.0, 2.0]]])
    sse, count = step_squared_errors(pred, target, DEPTH.valid(target))
    assert count.tolist() == [1, 4]
    assert abs(rmse_from_sums(float(sse.sum()), int(count.sum())) - math.sqrt(17 / 5)) < 1e-12


def test_metric_classes_sum_their_state_across_updates():
    miou, rmse = ConfusionMIoU(3, SEG.ignore_value), GlobalRMSE()
    # truth [0, 0, 1, 1] vs prediction [0, 0, 1, 2], then truth 1 predicted 1
    logits = torch.nn.functional.one_hot(torch.tensor([[[0, 0, 1, 2]]]), 3).permute(0, 3, 1, 2).float()
    miou.update(logits, torch.tensor([[[0, 0, 1, 1]]]))
    miou.update(logits[..., 2:3], torch.tensor([[[1]]]))
    # class 2 is predicted once, so it counts with IoU 0
    assert abs(miou.compute().item() - (1.0 + 2 / 3 + 0.0) / 3) < 1e-6
    assert miou.confusion.sum().item() == 5
    depth = torch.zeros(1, 1, 1, 2)
    rmse.update(depth, torch.tensor([[[2.0, 2.0]]]), torch.tensor([[[True, True]]]))
    rmse.update(depth, torch.tensor([[[2.0, 0.0]]]), torch.tensor([[[True, False]]]))
    assert rmse.count.item() == 3 and abs(rmse.compute().item() - 2.0) < 1e-9


def test_step_statistics_equal_the_per_step_torchmetrics_counts():
    from torchmetrics.functional.classification import multiclass_confusion_matrix

    (logits, target), _ = list(_seg_batches(3, n=2))
    per_step = step_confusions(logits, target, SEG.ignore_value)
    for k in range(logits.shape[0]):
        expected = multiclass_confusion_matrix(logits[k].argmax(0), target[k], CLASSES, ignore_index=SEG.ignore_value)
        assert torch.equal(per_step[k], expected.long())
