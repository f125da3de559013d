"""The README's "adding a task" example is real code that runs as written."""

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from dfbench import registry, tasks
from dfbench.heads.catalog import build_head
from dfbench.results import aggregate, stat_key

README = Path(__file__).resolve().parents[1] / "README.md"


def _example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    (block,) = [b for b in blocks if "@register_task" in b]
    return block


@pytest.fixture
def reldepth(monkeypatch):
    monkeypatch.setattr(registry.TASKS, "_registered", dict(registry.TASKS._registered))
    monkeypatch.setattr(registry.TASKS, "_resolved", dict(registry.TASKS._resolved))
    exec(compile(_example(), "README.md", "exec"), {})
    return tasks.get_task("reldepth")


def _records(task, clips):
    """Clip records as the evaluator writes them: per-step statistics in JSON form."""
    records = []
    for i, (outputs, labels) in enumerate(clips):
        found = task.statistics(outputs, labels, 1)
        stats = {stat_key(task.name, "mid", k, "mean"): task.to_json(s) for k, s in enumerate(found) if s is not None}
        records.append({"sample_id": f"clip-{i}", "stats": stats})
    return records


def _clips(seed, n=3):
    g = torch.Generator().manual_seed(seed)
    for _ in range(n):
        labels = 1 + 79 * torch.rand(2, 5, 6, generator=g)
        labels[torch.rand(2, 5, 6, generator=g) < 0.3] = 0.0
        outputs = labels[:, None] * (0.5 + torch.rand(2, 1, 5, 6, generator=g))
        yield outputs, labels


def _lower_median(values: np.ndarray) -> float:
    """torch.median's median: the lower of the two middle values of an even count."""
    return float(np.sort(values)[(values.size - 1) // 2])


def test_readme_task_registers_builds_its_head_and_aggregates(reldepth):
    assert [m.name for m in reldepth.metrics] == ["absrel", "delta1"]
    assert build_head("reldepth", 8, 1)(torch.randn(1, 8, 2, 2)).shape == (1, 1, 2, 2)
    clips = list(_clips(0))
    clips[1][1][0] = 0.0  # a step without ground truth adds nothing
    entries = aggregate(_records(reldepth, clips), {"reldepth": 1})
    assert [(e["metric"], e["step"]) for e in entries] == [("absrel", 0), ("delta1", 0), ("absrel", 1), ("delta1", 1)]

    # the same numbers pooled over every valid pixel, computed independently in numpy
    for step in (0, 1):
        rel, within = [], []
        for outputs, labels in clips:
            label = labels[step].numpy().astype(np.float64)
            mask = label > 0
            if not mask.any():
                continue
            pred = outputs[step, 0].numpy().astype(np.float64)[mask]
            pred *= _lower_median(label[mask]) / _lower_median(pred)
            rel.append(np.abs(pred - label[mask]) / label[mask])
            within.append(np.maximum(pred / label[mask], label[mask] / pred) < 1.25)
        values = {e["metric"]: e["value"] for e in entries if e["step"] == step}
        assert values["absrel"] == pytest.approx(np.concatenate(rel).mean(), rel=1e-9)
        assert values["delta1"] == pytest.approx(100.0 * np.concatenate(within).mean(), rel=1e-9)
        assert 0 < values["absrel"] and 0 < values["delta1"] < 100


def test_readme_task_is_scale_invariant(reldepth):
    labels = 1 + torch.arange(12.0).reshape(1, 3, 4)
    (stats,) = reldepth.statistics(3.5 * labels[:, None], labels, 1)
    assert reldepth.compute(stats) == pytest.approx({"absrel": 0.0, "delta1": 100.0})
