"""The lazy registries: every built-in entry resolves to what it claims, typos get help."""

import importlib

import pytest

from dfbench import registry
from dfbench.adapters.base import WorldModel
from dfbench.errors import DfbenchError


@pytest.mark.parametrize("name", sorted(registry.BUILTIN_MODELS))
def test_every_builtin_model_registers_its_listed_name(name):
    cls = registry.get_model_class(name)
    assert issubclass(cls, WorldModel) and cls.name == name


def test_builtin_modules_register_nothing_unlisted():
    for module in set(registry.BUILTIN_MODELS.values()):
        importlib.import_module(module)
    builtin_classes = {n for n, c in registry._REGISTERED.items() if c.__module__.startswith("dfbench.adapters")}
    assert builtin_classes == set(registry.BUILTIN_MODELS)


@pytest.mark.parametrize("name", sorted(registry.BUILTIN_DATASETS))
def test_every_builtin_dataset_resolves(name):
    assert registry.get_dataset_class(name).name == name


@pytest.mark.parametrize("name", sorted(registry.BUILTIN_FEATURE_SPACES))
def test_every_feature_space_loader_resolves(name):
    assert callable(registry.get_feature_space_loader(name))


def test_register_model_refuses_non_world_models():
    with pytest.raises(TypeError):
        registry.register_model("not-a-model")(object)


def test_typos_suggest_the_nearest_name():
    with pytest.raises(DfbenchError, match="Did you mean 'deltaworld'"):
        registry.get_model_class("deltaworl")
    with pytest.raises(DfbenchError, match="Did you mean 'cityscapes'"):
        registry.get_dataset_class("cityscape")
