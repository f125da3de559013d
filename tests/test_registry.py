"""The lazy registries: every built-in entry resolves to what it claims, collisions and typos get help."""

import subprocess
import sys

import pytest

from dfbench import registry
from dfbench.adapters.base import Forecast, WorldModel
from dfbench.adapters.spec import ModelSpec, WeightSource
from dfbench.data.base import EvalDataset
from dfbench.data.spec import DatasetSpec
from dfbench.errors import DfbenchError


@pytest.mark.parametrize("name", registry.MODELS.builtin_names())
def test_every_builtin_model_is_a_spec_whose_family_is_a_world_model(name):
    spec = registry.get_model_spec(name)
    assert isinstance(spec, ModelSpec) and spec.name == name
    cls = registry.get_model_class(name)
    assert issubclass(cls, WorldModel) and cls.name == name and cls.spec is spec
    assert (cls.stochastic, cls.oracle) == (spec.stochastic, spec.oracle)


@pytest.mark.parametrize("name", registry.DATASETS.builtin_names())
def test_every_builtin_dataset_resolves_to_a_loader_with_its_spec(name):
    cls = registry.get_dataset_class(name)
    spec = registry.get_dataset_spec(name)
    assert issubclass(cls, EvalDataset) and isinstance(spec, DatasetSpec)
    assert cls.name == spec.name == name and cls.tasks == dict(spec.tasks) and cls.fps == spec.fps
    if spec.train_frames is not None:  # single labelled frames, or whole labelled clips
        lister = registry.resolve_target(spec.train_frames)
        assert (callable(getattr(lister, "items", None)) and callable(lister.read)) or callable(lister.clips)


@pytest.mark.parametrize("name", registry.FEATURE_SPACES.builtin_names())
def test_every_feature_space_loader_resolves(name):
    assert callable(registry.get_feature_space_loader(name))


def test_the_task_kind_declares_its_builtins_and_entry_point_group():
    # The task definitions themselves live in dfbench.tasks; here only the kind's wiring.
    assert registry.TASKS.builtin_names()[:2] == ["seg", "depth"] and registry.TASKS.group == "dfbench.tasks"
    groups = {r.group for r in (registry.MODELS, registry.DATASETS, registry.FEATURE_SPACES, registry.TASKS)}
    assert groups == {"dfbench.adapters", "dfbench.datasets", "dfbench.feature_spaces", "dfbench.tasks"}


def test_listing_names_imports_no_torch():
    code = ("import sys; from dfbench import registry; "
            "names = registry.model_names() + registry.dataset_names() + registry.feature_space_names(); "
            "specs = registry.builtin_model_specs(); "
            "assert 'torch' not in sys.modules, sorted(m for m in sys.modules if m.startswith('torch'))")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_register_model_refuses_non_world_models():
    with pytest.raises(TypeError):
        registry.register_model("not-a-model")(object)


def test_a_registered_adapter_gets_a_spec_from_its_class():
    @registry.register_model("test-registry-last")
    class Last(WorldModel):
        """Repeats the last frame."""

        stochastic = True

        def predict(self, context, target_timestamps, num_samples):
            return Forecast(context.features[:, -1][:, None, None])

    spec = registry.get_model_spec("test-registry-last")
    assert (spec.name, spec.display, spec.stochastic, spec.oracle, spec.description) == (
        "test-registry-last", "test-registry-last", True, False, "Repeats the last frame.")
    assert registry.get_model_class("test-registry-last") is Last and spec.runs_offline("tiny")


def test_two_sources_for_one_name_are_refused_in_one_line():
    class Other(WorldModel):
        def predict(self, context, target_timestamps, num_samples):
            raise NotImplementedError

    with pytest.raises(DfbenchError, match="'deltaworld' is a built-in name"):
        registry.register_model("deltaworld")(Other)
    registry.register_model("test-registry-twice")(Other)

    class Another(Other):
        pass

    with pytest.raises(DfbenchError, match="'test-registry-twice' is registered twice") as error:
        registry.register_model("test-registry-twice")(Another)
    assert "\n" not in str(error.value)


def _callable_widget(name, entry):
    if not callable(entry):
        raise DfbenchError(f"widget '{name}' is not callable")
    return entry


def test_a_generic_registry_checks_its_entries():
    table = registry.Registry("widget", "dfbench.test-widgets", {"sum": "builtins:sum", "pi": "math:pi"}, _callable_widget)
    assert table.names() == ["pi", "sum"] and table.get("sum") is sum
    with pytest.raises(DfbenchError, match="widget 'pi' is not callable"):
        table.get("pi")
    with pytest.raises(DfbenchError, match="Did you mean 'sum'"):
        table.get("sun")


def test_specs_refuse_malformed_declarations():
    with pytest.raises(DfbenchError, match="module:Class"):
        ModelSpec(name="x", display="X", family="NoColon")
    with pytest.raises(DfbenchError, match="tokens"):
        ModelSpec(name="x", display="X", family="m:C", tokens="pixel")
    with pytest.raises(DfbenchError, match="shipped file or a hub id"):
        WeightSource()
    with pytest.raises(DfbenchError, match="names no tasks"):
        DatasetSpec(name="x", display="X", version="1", tasks={}, fps=10.0)


def test_typos_suggest_the_nearest_name():
    with pytest.raises(DfbenchError, match="Did you mean 'deltaworld'"):
        registry.get_model_class("deltaworl")
    with pytest.raises(DfbenchError, match="Did you mean 'cityscapes'"):
        registry.get_dataset_class("cityscape")
    with pytest.raises(DfbenchError, match="Did you mean 'dinov3-vitb16'"):
        registry.get_feature_space_loader("dinov3-vitb32")


def test_a_dataset_class_without_a_spec_gets_one_from_its_attributes():
    @registry.register_dataset
    class Bare(EvalDataset):
        name, tasks, fps = "test-registry-bare", {"seg": 3}, 5.0

        def sample_ids(self):
            return []

        def load(self, sample_id):
            raise KeyError(sample_id)

    spec = registry.get_dataset_spec("test-registry-bare")
    assert (spec.name, dict(spec.tasks), spec.fps, spec.version, spec.env) == (
        "test-registry-bare", {"seg": 3}, 5.0, "unversioned", "TEST_REGISTRY_BARE_ROOT")
    assert Bare().version == "unversioned" and Bare().check(deep=True) == []
    with pytest.raises(TypeError):
        registry.register_dataset(object)
