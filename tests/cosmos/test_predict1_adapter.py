"""cosmos-4b / cosmos-12b drive cosmos-predict1's Python API; a stand-in module with its interface runs here."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest
import torch

from dfbench.config import load_protocol
from dfbench.errors import DfbenchError
from dfbench.evaluate import Evaluator
from dfbench.features import load_feature_space
from dfbench.registry import get_dataset_class, get_model_class, get_model_spec, register_model_spec

STANDIN = Path(__file__).parent / "standin"


@pytest.fixture
def predict1(monkeypatch):
    """The stand-in package on sys.path, fresh for each test and unloaded after it."""
    monkeypatch.syspath_prepend(str(STANDIN))
    _unload()
    from cosmos_predict1.autoregressive.inference import world_generation_pipeline

    world_generation_pipeline.CALLS.clear()
    yield world_generation_pipeline
    _unload()


def _unload() -> None:
    for name in [m for m in sys.modules if m.split(".")[0] == "cosmos_predict1"]:
        del sys.modules[name]


@pytest.fixture(scope="module")
def tiny():
    return load_feature_space("tiny")


def _small(name: str) -> type:
    """The spec at the synthetic world's size (64 x 128 instead of 640 x 1024), same frame map."""
    test_name = f"{name}-small"
    try:
        get_model_spec(test_name)
    except DfbenchError:
        spec = get_model_spec(name)
        pixel = dataclasses.replace(spec.pixel_input, height=64, width=128, short_side=None)
        register_model_spec(dataclasses.replace(spec, name=test_name, pixel_input=pixel))
    return get_model_class(test_name)


def _forecast(model, tiny, samples=2, clips=1):
    dataset = get_dataset_class("synthetic")(frame_size=tiny.frame_size)
    evaluator = Evaluator(model, tiny, {}, load_protocol(), num_samples=samples, horizons=["mid"])
    encoded = [evaluator.encode(dataset.load(sid)) for sid in dataset.sample_ids()[:clips]]
    (window,) = evaluator.windows()
    return evaluator.forecast(encoded, window)


@pytest.mark.parametrize("name", ["cosmos-4b", "cosmos-12b"])
def test_predict1_models_forecast_through_the_harness(name, predict1, tiny):
    model = _small(name)(tiny, checkpoint_dir="/weights")
    assert model.pipeline.settings == {"checkpoint_dir": "/weights", "checkpoint_name": get_model_spec(name).options[
        "checkpoint_name"], "disable_guardrail": False, "offload_network": False}
    scored = _forecast(model, tiny, samples=2)
    assert scored["best"].shape == (2, 3, 64, tiny.dim)
    calls = predict1.CALLS
    assert len(calls) == 2 and {c["num_input_frames"] for c in calls} == {9}
    assert calls[0]["seed"] != calls[1]["seed"]  # one seed per sample, from the clip's generator


def test_seeds_depend_only_on_the_clip(predict1, tiny):
    _forecast(_small("cosmos-4b")(tiny), tiny, samples=2, clips=2)
    both = [c["seed"] for c in predict1.CALLS]
    predict1.CALLS.clear()
    _forecast(_small("cosmos-4b")(tiny), tiny, samples=2, clips=1)
    assert [c["seed"] for c in predict1.CALLS] == both[:2]


def test_the_guardrail_stays_on_unless_accepted_and_a_block_is_one_line(predict1, tiny):
    model = _small("cosmos-12b")(tiny, accept_no_guardrail="true", offload_network="true")
    assert model.pipeline.settings["disable_guardrail"] is True and model.pipeline.settings["offload_network"] is True
    predict1.ARBaseGenerationPipeline.blocked = True
    try:
        with pytest.raises(DfbenchError, match="guardrail blocked"):
            _forecast(_small("cosmos-12b")(tiny), tiny, samples=1)
    finally:
        predict1.ARBaseGenerationPipeline.blocked = False


def test_without_the_package_one_line_names_the_install_steps(tiny, monkeypatch):
    _unload()
    monkeypatch.setitem(sys.modules, "cosmos_predict1", None)  # not installed
    with pytest.raises(DfbenchError, match="cosmos-predict1.*INSTALL.md.*--model_sizes 4B"):
        get_model_class("cosmos-4b")(tiny)


def test_the_paper_protocol_is_declared():
    spec = get_model_spec("cosmos-12b")
    assert (spec.pixel_input.height, spec.pixel_input.width, spec.pixel_input.num_frames) == (640, 1024, 9)
    assert spec.pixel_input.context_map[-1] == 3 and spec.options["generated_frames"] == 24
    assert spec.table.reference == "cosmos_12b"


def test_frames_of_another_shape_are_one_line(predict1, tiny, monkeypatch):
    model = _small("cosmos-4b")(tiny)
    monkeypatch.setattr(model.pipeline, "generate", lambda **kw: torch.zeros(33, 64, 64, 3, dtype=torch.uint8).numpy())
    with pytest.raises(DfbenchError, match=r"expected uint8 \(33, 64, 128, 3\)"):
        _forecast(model, tiny, samples=1)
