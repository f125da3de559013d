"""Tasks: lookup, the built-in definitions, and a new task through the shared code.

The surface-normal task below lives only in this file: its labels have three
channels, its statistics other fields and it reports two metrics, yet the evaluator,
the JSON records, ``aggregate`` and the table layout take it without any change.
"""

import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dfbench import registry, tasks
from dfbench.adapters.copy_last import CopyLast
from dfbench.cli.run import parse_heads
from dfbench.config import Protocol
from dfbench.data.base import Clip
from dfbench.errors import DfbenchError
from dfbench.evaluate import Evaluator, finalize_stats
from dfbench.features.tiny import load_tiny
from dfbench.heads.catalog import build_head
from dfbench.results import aggregate
from dfbench.tables import load_layout
from dfbench.tasks import MetricDef, Task, get_task, register_task, task_names


@pytest.fixture
def task_registry(monkeypatch):
    """Tasks registered by a test disappear after it."""
    monkeypatch.setattr(registry.TASKS, "_registered", dict(registry.TASKS._registered))
    monkeypatch.setattr(registry.TASKS, "_resolved", dict(registry.TASKS._resolved))


class SurfaceNormals(Task):
    """Unit normals [K, 3, h, w]; an all-zero label vector marks a pixel without ground truth."""

    name = "toy-normals"
    display = "Surface normals"
    metrics = (
        MetricDef("mean_angle", "Mean angle", higher_is_better=False, decimals=1, unit="deg"),
        MetricDef("within_11", "11.25°", higher_is_better=True, decimals=1, unit="%"),
    )
    ignore_value = 0.0
    head_family = "linear"

    def build_head(self, dim, num_classes):
        return nn.Conv2d(dim, 3, kernel_size=1)

    def valid(self, labels):
        return labels.abs().sum(dim=-3) > 0

    def statistics(self, outputs, labels, num_classes):
        angle = torch.rad2deg(torch.acos(F.cosine_similarity(outputs, labels, dim=1).clamp(-1, 1)))
        out = []
        for step_angle, mask in zip(angle, self.valid(labels)):
            seen = step_angle[mask].double()
            out.append({"angle": float(seen.sum()), "within": int((seen < 11.25).sum()), "count": int(mask.sum())}
                       if mask.any() else None)
        return out

    def compute(self, stats):
        return {"mean_angle": stats["angle"] / stats["count"], "within_11": 100.0 * stats["within"] / stats["count"]}

    def training_loss(self, outputs, labels):
        mask = self.valid(labels)
        return (1 - F.cosine_similarity(outputs, labels, dim=1))[mask].sum(), int(mask.sum())


def test_lookup_by_name_with_a_hint_for_typos():
    assert task_names()[:2] == ["seg", "depth"]
    assert get_task("seg").name == "seg" and get_task("depth").name == "depth"
    with pytest.raises(DfbenchError, match=r"unknown task 'sge'\. Did you mean 'seg'\?") as err:
        get_task("sge")
    assert "\n" not in str(err.value)
    with pytest.raises(DfbenchError, match="unknown task 'normals'"):
        build_head("normals", 8, 1)


def test_register_checks_the_base_class_and_name_collisions(task_registry):
    with pytest.raises(TypeError, match="must subclass"):
        register_task(dict)
    assert register_task(SurfaceNormals) is SurfaceNormals
    assert register_task(SurfaceNormals) is SurfaceNormals  # registering the same class again is harmless
    assert isinstance(get_task("toy-normals"), SurfaceNormals)
    clash = type("OtherSeg", (SurfaceNormals,), {"name": "seg"})
    with pytest.raises(DfbenchError, match="task 'seg' is a built-in name"):
        register_task(clash)


def test_metric_names_are_unique_and_tables_read_their_definitions():
    names = [m.name for m in tasks.metric_defs()]
    assert len(names) == len(set(names))
    layout = load_layout()
    assert layout.metric("miou") == {"name": "miou", "display": "mIoU", "higher_is_better": True,
                                     "decimals": 1, "unit": "%"}
    assert (layout.metric("rmse")["higher_is_better"], layout.metric("rmse")["decimals"]) == (False, 2)
    assert list(layout.metrics)[:2] == ["miou", "rmse"]  # column order within a data set


def test_builtin_heads_come_from_the_task():
    features = torch.randn(2, 8, 3, 3)
    assert build_head("seg", 8, 5).eval()(features).shape == (2, 5, 3, 3)
    depth = get_task("depth").build_head(8, 1).eval()(features)
    assert depth.shape == (2, 1, 3, 3) and (depth > 0).all()


@pytest.mark.parametrize("name", task_names())
def test_every_task_scores_a_random_forecast_through_its_json_form(name):
    task = get_task(name)
    classification = isinstance(task.ignore_value, int)  # class ids, else a value in metres
    num_classes = 4 if classification else 1
    head = task.build_head(8, num_classes).eval()
    g = torch.Generator().manual_seed(0)
    outputs = head(torch.randn(3, 8, 4, 5, generator=g)).detach()
    shape = (3, 4, 5)
    low = 1 if task.ignore_value == 0 else 0  # relative-depth bins: 0 marks a pixel without depth
    labels = torch.randint(low, num_classes, shape, generator=g) if classification else 1 + 79 * torch.rand(shape, generator=g)
    labels[:, 0] = task.ignore_value
    labels[1] = task.ignore_value
    found = task.statistics(outputs, labels, num_classes)
    assert found[1] is None and found[0] is not None and found[2] is not None
    total = task.from_json(json.loads(json.dumps(task.to_json(task.merge(found[0], found[2])))), num_classes)
    values = task.compute(total)
    assert list(values) == [m.name for m in task.metrics]
    assert all(v == v for v in values.values())  # not NaN
    loss, count = task.training_loss(outputs, labels)
    assert count == int(task.valid(labels).sum()) == 2 * 3 * 5 and loss.item() > 0


def test_existing_json_forms_are_read_and_written_unchanged():
    seg, depth = get_task("seg"), get_task("depth")
    triplets = {"confusion": [[0, 0, 7], [0, 2, 1], [2, 1, 3]]}
    matrix = seg.from_json(triplets, 3)
    assert matrix.tolist() == [[7, 0, 1], [0, 0, 0], [0, 3, 0]]
    assert seg.to_json(matrix) == triplets
    assert seg.to_json(seg.merge(matrix, matrix)) == {"confusion": [[0, 0, 14], [0, 2, 2], [2, 1, 6]]}
    sums = {"sse": 12.5, "count": 4}
    assert depth.to_json(depth.from_json(sums, 1)) == sums
    assert depth.merge(sums, {"sse": 0.5, "count": 1}) == {"sse": 13.0, "count": 5}
    assert depth.compute({"sse": 13.0, "count": 13}) == {"rmse": 1.0}
    assert seg.compute(matrix)["miou"] == pytest.approx(100.0 * (7 / 8 + 0 + 0) / 3)


def test_steps_without_a_valid_pixel_have_no_statistics():
    seg, depth = get_task("seg"), get_task("depth")
    labels = torch.tensor([[[1, 0]], [[255, 255]]])
    found = seg.statistics(torch.randn(2, 3, 1, 2), labels, 3)
    assert found[1] is None and int(found[0].sum()) == 2
    gt = torch.tensor([[[0.0, float("nan")]], [[2.0, 0.0]]])
    found = depth.statistics(torch.ones(2, 1, 1, 2), gt, 1)
    assert found == [None, {"sse": 1.0, "count": 1}]


def test_parse_heads_takes_every_task_name(task_registry):
    with pytest.raises(DfbenchError, match="TASK one of seg, depth"):
        parse_heads(("normals=x.safetensors",))
    register_task(SurfaceNormals)
    assert parse_heads(("toy-normals=a.safetensors", "seg=b")) == {"toy-normals": "a.safetensors", "seg": "b"}


def _normal_labels(frames: int, height: int, width: int) -> torch.Tensor:
    """+z on the left columns, +x on the right ones, a void top row; frame 4 is unlabelled."""
    labels = torch.zeros(frames, 3, height, width)
    labels[:, 2, :, : width // 3] = 1.0
    labels[:, 0, :, width // 3 :] = 1.0
    labels[:, :, 0] = 0.0
    labels[4] = 0.0
    return labels


def test_a_task_defined_elsewhere_runs_through_the_evaluator_and_aggregate(task_registry):
    register_task(SurfaceNormals)
    space = load_tiny()
    head = get_task("toy-normals").build_head(space.dim, 3)
    nn.init.zeros_(head.weight)
    head.bias.data = torch.tensor([0.0, 0.0, 1.0])  # always predicts +z
    protocol = Protocol("toy", "0", 6, 3, {"short": 1, "mid": 2}, 2.0, 0.1, 1)
    evaluator = Evaluator(CopyLast(space), space, {"toy-normals": head.eval()}, protocol, 1, ["short", "mid"])
    frames = torch.randint(0, 256, (6, 3, 64, 96), dtype=torch.uint8)  # overlapping crops
    labels = _normal_labels(6, 7, 11)  # odd width: the first label half is padded with the ignore value
    clip = Clip("toy-0", frames, torch.arange(6.0) / 10, {"toy-normals": labels})

    records = [json.loads(json.dumps(finalize_stats(r))) for r in evaluator.evaluate([evaluator.encode(clip)])]
    assert set(records[0]["stats"]) == {"toy-normals/short/0/single", "toy-normals/mid/1/single"}  # frame 4: none
    entries = aggregate(records, {"toy-normals": 3})

    valid = SurfaceNormals().valid(labels[5])
    share_z = float(labels[5, 2][valid].sum() / valid.sum())
    assert len(entries) == 4 and {e["metric"] for e in entries} == {"mean_angle", "within_11"}
    for entry in entries:
        expected = 90.0 * (1 - share_z) if entry["metric"] == "mean_angle" else 100.0 * share_z
        assert entry["value"] == pytest.approx(expected, abs=0.05), entry
