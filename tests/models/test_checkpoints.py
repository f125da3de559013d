"""Checkpoint resolution, reading and checked loading, at the released ViT-B layout.

The ViT-B modules are built on the meta device and materialised uninitialised
(``to_empty``), so a 170M-parameter tokenizer costs memory bandwidth, not init time.
State dicts are written in the formats the released files and our own use.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from dfbench.checkpoints import (
    as_state_dict,
    load_checkpoint,
    load_into,
    load_state_dict,
    looks_like,
    read_safetensors_metadata,
    resolve_checkpoint,
    save_safetensors,
    saved_entries,
    sha256_file,
)
from dfbench.errors import DfbenchError
from dfbench.heads.linear import DepthHead, SegHead
from dfbench.models import DeltaTok, DeltaTokConfig, DeltaWorld, DeltaWorldConfig, DINOWorld, DINOWorldConfig
from dfbench.models.predictor import PredictorConfig

@pytest.fixture(scope="module")
def layout(reference_file) -> dict:
    return json.loads(reference_file("checkpoint_layout.json").read_text())


def vitb(name: str, device: str = "meta") -> nn.Module:
    """A ViT-B network on ``device``; on "cpu" its memory is uninitialised and NaN-filled."""
    with torch.device("meta"):
        if name == "deltatok":
            module = DeltaTok(DeltaTokConfig.vitb())
        elif name == "deltaworld":
            module = DeltaWorld(DeltaTok(DeltaTokConfig.vitb()), DeltaWorldConfig.vitb())
        elif name == "seg_head_19":
            module = SegHead(768, 19)
        elif name == "seg_head_124":
            module = SegHead(768, 124)
        elif name == "depth_head":
            module = DepthHead(768)
        else:
            module = DINOWorld(DINOWorldConfig.vitb(use_bom=name == "dinoworld_bom"))
    if device != "meta":
        module = module.to_empty(device=device)
        with torch.no_grad():
            for tensor in module.state_dict().values():
                if tensor.is_floating_point():
                    tensor.fill_(float("nan"))
    return module


def layout_state_dict(section: dict) -> dict[str, torch.Tensor]:
    """Tensors with exactly the released keys, shapes and dtypes; tensor i is filled with i."""
    return {
        key: torch.full(shape, float(i), dtype=getattr(torch, dtype))
        for i, (key, (shape, dtype)) in enumerate(section.items())
    }


def assert_loaded(module: nn.Module, state: dict[str, torch.Tensor]) -> None:
    current = module.state_dict()
    for key, tensor in state.items():
        assert torch.equal(current[key], tensor), key


def tiny_tokenizer() -> DeltaTok:
    return DeltaTok(DeltaTokConfig(hidden_size=32, num_heads=2, patch_size=8, num_layers=1, intermediate_size=16))


def tiny_world(dino_use_bom: bool | None = None) -> nn.Module:
    """A small real DeltaWorld, or DINO-world when ``dino_use_bom`` is given."""
    if dino_use_bom is None:
        predictor = PredictorConfig(input_size=32, hidden_size=32, num_layers=1, num_heads=2, rope_axis_sizes=(12,))
        return DeltaWorld(tiny_tokenizer(), DeltaWorldConfig(predictor=predictor))
    predictor = PredictorConfig(input_size=32, hidden_size=32, num_layers=1, num_heads=2, rope_axis_sizes=(4, 4, 4))
    return DINOWorld(DINOWorldConfig(predictor=predictor, use_bom=dino_use_bom))


def write(state: dict[str, torch.Tensor], path: Path, wrapper: str) -> Path:
    if wrapper == "safetensors":
        save_file(state, str(path))
    elif wrapper == "raw":
        torch.save(state, path)
    elif wrapper == "state_dict":
        torch.save({"state_dict": state}, path)
    else:  # a Lightning checkpoint of the compiled network, training state beside it
        prefixed = {f"network._orig_mod.{key}": tensor for key, tensor in state.items()}
        torch.save(
            {"epoch": 3, "global_step": 1200, "pytorch-lightning_version": "2.6.1", "state_dict": prefixed,
             "optimizer_states": [], "lr_schedulers": []},
            path,
        )
    return path


# -- the released layout -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["deltatok", "deltaworld", "dinoworld", "seg_head_19", "seg_head_124", "depth_head"])
def test_vitb_checkpoint_entries_are_the_released_layout(layout, name):
    entries = saved_entries(vitb(name))
    got = {key: [list(t.shape), str(t.dtype).removeprefix("torch.")] for key, t in entries.items()}
    assert got == layout[name]


def test_dinoworld_bom_checkpoint_is_the_predictor_keys_only(layout):
    assert set(saved_entries(vitb("dinoworld_bom"))) == {k for k in layout["dinoworld"] if k != "q_embed.weight"}


# -- every file format ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "filename, wrapper",
    [("pytorch_model.bin", "state_dict"), ("w.safetensors", "safetensors"), ("last.ckpt", "lightning")],
)
def test_vitb_deltaworld_loads_from_every_format(layout, tmp_path, filename, wrapper):
    state = layout_state_dict(layout["deltaworld"])
    path = write(state, tmp_path / filename, wrapper)
    world = vitb("deltaworld")
    loaded = load_checkpoint(world, path, model_name="deltaworld")
    assert_loaded(world, state)
    # The frozen tokenizer is not in a DeltaWorld file and is left as it was.
    assert world.tokenizer.z_embed.weight.is_meta
    assert loaded.path == path
    assert loaded.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    "name, filename",
    [
        pytest.param("deltatok", "tok.safetensors", marks=pytest.mark.slow),
        pytest.param("dinoworld", "dino.bin", marks=pytest.mark.slow),
    ],
)
def test_vitb_tokenizer_and_dinoworld_load_into_cpu_modules(layout, tmp_path, name, filename):
    state = layout_state_dict(layout[name])
    path = write(state, tmp_path / filename, "safetensors" if filename.endswith("safetensors") else "raw")
    module = vitb(name, "cpu")
    load_checkpoint(module, path, model_name=name)
    assert_loaded(module, state)
    assert not any(torch.isnan(p).any() for p in module.parameters()), name


@pytest.mark.parametrize("name", ["deltatok", "dinoworld"])
def test_vitb_layout_loads_into_a_meta_module(layout, tmp_path, name):
    state = layout_state_dict(layout[name])
    path = write(state, tmp_path / "w.bin", "raw")
    module = load_into(vitb(name), load_state_dict(path), name)
    assert not any(p.is_meta for p in module.parameters())
    assert_loaded(module, state)


def test_meta_module_takes_the_checkpoint_tensors(layout):
    state = layout_state_dict(layout["dinoworld"])
    model = load_into(vitb("dinoworld"), state, "dinoworld")
    assert model.q_embed.weight.data_ptr() == state["q_embed.weight"].data_ptr()
    assert model.q_embed.weight.requires_grad


@pytest.mark.parametrize("name", ["seg_head_19", "seg_head_124", "depth_head"])
@pytest.mark.parametrize("wrapper", ["raw", "safetensors", "lightning"])
def test_vitb_heads_load_with_their_batchnorm_statistics(layout, tmp_path, name, wrapper):
    state = layout_state_dict(layout[name])
    path = write(state, tmp_path / f"{name}.{'safetensors' if wrapper == 'safetensors' else 'bin'}", wrapper)
    head = vitb(name, "cpu")
    load_into(head, load_state_dict(path), name.replace("_", " "))
    assert_loaded(head, state)


def test_full_network_state_dict_with_backbone_loads():
    # The reference code's unfiltered state dict carries the frozen backbone (twice for
    # DeltaWorld) and the tokenizer; the backbone is dropped and the rest fits.
    world, source = tiny_world(), tiny_world()
    full = dict(source.state_dict())
    full["backbone.layer.0.norm1.weight"] = torch.ones(32)
    full["tokenizer.backbone.layer.0.norm1.weight"] = torch.ones(32)
    load_into(world, full, "deltaworld")
    assert_loaded(world, source.state_dict())


# -- wrong contents ------------------------------------------------------------------------


def error_of(module: nn.Module, state: dict, model_name: str) -> str:
    with pytest.raises(DfbenchError) as caught:
        load_into(module, state, model_name)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_missing_trainable_key_is_named():
    state = saved_entries(tiny_world())
    del state["predictor.head.bias"]
    assert "1 missing (predictor.head.bias)" in error_of(tiny_world(), state, "deltaworld")


def test_unexpected_key_is_named():
    state = saved_entries(tiny_world())
    state["predictor.extra.weight"] = torch.zeros(3)
    assert "1 unexpected (predictor.extra.weight)" in error_of(tiny_world(), state, "deltaworld")


def test_wrong_shapes_are_listed_file_vs_model_and_cut(layout):
    message = error_of(tiny_world(), layout_state_dict(layout["deltaworld"]), "deltaworld")
    assert "mis-shaped" in message
    assert "predictor.blocks.0.attention.kv_proj.weight (1536, 768) vs (64, 32)" in message
    # One tiny block: 20 keys mis-shaped, the other 11 ViT-B blocks' 176 unexpected; five named each.
    assert "176 unexpected" in message and "20 mis-shaped" in message and "and 15 more" in message


def test_frozen_tokenizer_needs_every_parameter():
    # Loading a tokenizer into the frozen tokenizer of a world model checks all of it.
    world = tiny_world()
    state = saved_entries(tiny_tokenizer())
    del state["norm.bias"]
    assert "1 missing (norm.bias)" in error_of(world.tokenizer, state, "deltatok")


def test_dinoworld_weights_given_to_deltaworld_are_recognised():
    message = error_of(tiny_world(), saved_entries(tiny_world(dino_use_bom=False)), "deltaworld")
    assert "looks like a learned-query predictor (DINO-world" in message and "q_embed.weight" in message


def test_deltaworld_weights_given_to_dinoworld_are_recognised():
    message = error_of(tiny_world(dino_use_bom=False), saved_entries(tiny_world()), "dino-world")
    assert "looks like a noise-query predictor (DeltaWorld" in message


def test_tokenizer_weights_given_to_a_head_are_recognised():
    message = error_of(SegHead(32, 19), saved_entries(tiny_tokenizer()), "segmentation head")
    assert "looks like a DeltaTok tokenizer" in message


def test_head_weights_given_to_the_tokenizer_are_recognised():
    message = error_of(tiny_tokenizer(), saved_entries(DepthHead(32)), "deltatok")
    assert "looks like a KITTI depth head" in message


def test_head_of_another_data_set_is_named_by_its_outputs():
    message = error_of(SegHead(8, 124), saved_entries(SegHead(8, 19)), "vspw")
    assert "looks like a Cityscapes segmentation head (e.g. key 'head.bias')" in message


@pytest.mark.parametrize(
    "state, kind",
    [
        ({"embeddings.patch_embeddings.weight": torch.zeros(1), "layer.0.norm1.weight": torch.zeros(1)}, "DINOv3"),
        ({"model.layer.0.norm1.weight": torch.zeros(1)}, "DINOv3 backbone"),
        ({"bn.weight": torch.zeros(4), "head.weight": torch.zeros(124, 4, 1, 1)}, "VSPW segmentation head"),
        ({"bn.weight": torch.zeros(4), "head.weight": torch.zeros(7, 4, 1, 1)}, "task head with 7 outputs"),
    ],
)
def test_looks_like_other_models(state, kind):
    assert kind in looks_like(state)[0]


def test_unknown_keys_are_not_guessed():
    assert looks_like({"fc.weight": torch.zeros(1)}) is None


def test_batchnorm_statistics_are_loaded_when_present_and_optional():
    source = SegHead(8, 3)
    with torch.no_grad():
        source.bn.running_mean.uniform_(-1, 1)
        source.bn.running_var.uniform_(0.5, 2)
    source.bn.num_batches_tracked.fill_(7)
    head = load_into(SegHead(8, 3), source.state_dict(), "segmentation head")
    assert_loaded(head, source.state_dict())

    without_stats = {k: v for k, v in source.state_dict().items() if "running" not in k and "num_batches" not in k}
    fresh = load_into(SegHead(8, 3), without_stats, "segmentation head")
    assert torch.equal(fresh.bn.running_var, torch.ones(8))
    assert torch.equal(fresh.head.weight, source.head.weight)


# -- files that are not state dicts -------------------------------------------------------


class _Opaque:
    """An arbitrary object: weights-only loading must refuse to unpickle it."""


@pytest.mark.parametrize(
    "name, content",
    [
        ("list.bin", [torch.zeros(2)]),
        ("tensor.pt", torch.zeros(2)),
        ("ints.bin", {"step": 3, "weight": torch.zeros(2)}),
        ("empty.pt", {}),
    ],
)
def test_torch_files_without_a_state_dict_are_refused(tmp_path, name, content):
    path = tmp_path / name
    torch.save(content, path)
    with pytest.raises(DfbenchError, match="state dict"):
        load_state_dict(path)


def test_backbone_only_file_is_refused():
    with pytest.raises(DfbenchError, match="only backbone weights"):
        as_state_dict({"backbone.layer.0.norm1.weight": torch.zeros(2)})


@pytest.mark.parametrize("payload", [{"weight": _Opaque()}, {"state_dict": {}, "hparams": argparse.Namespace(lr=1)}])
def test_pickled_code_is_refused_not_run(tmp_path, payload):
    path = tmp_path / "model.ckpt"
    with open(path, "wb") as handle:
        pickle.dump(payload, handle)
    with pytest.raises(DfbenchError, match="not a weights-only torch checkpoint") as caught:
        load_state_dict(path)
    assert "\n" not in str(caught.value)


def test_text_empty_and_corrupt_files_are_refused(tmp_path):
    text = tmp_path / "notes.ckpt"
    text.write_text("not a checkpoint\n")
    with pytest.raises(DfbenchError, match="weights-only"):
        load_state_dict(text)
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    with pytest.raises(DfbenchError, match="not a torch checkpoint"):
        load_state_dict(empty)
    corrupt = tmp_path / "cut.safetensors"
    save_file({"w": torch.zeros(64)}, str(corrupt))
    corrupt.write_bytes(corrupt.read_bytes()[:-40])
    with pytest.raises(DfbenchError, match="not a readable safetensors file"):
        load_state_dict(corrupt)


# -- sources: paths, folders and hub ids --------------------------------------------------


def test_missing_path_and_folder_without_the_file_are_refused(tmp_path):
    with pytest.raises(DfbenchError, match="does not exist"):
        resolve_checkpoint(tmp_path / "nope.bin")
    with pytest.raises(DfbenchError, match="has no 'pytorch_model.bin'"):
        resolve_checkpoint(tmp_path)


def test_folder_resolves_to_its_file(tmp_path):
    torch.save(saved_entries(SegHead(4, 2)), tmp_path / "pytorch_model.bin")
    assert resolve_checkpoint(tmp_path) == tmp_path / "pytorch_model.bin"


def test_uncached_hub_id_offline_says_how_to_get_it(tmp_path):
    with pytest.raises(DfbenchError) as caught:
        resolve_checkpoint("Amazon-FAR/deltaworld-kinetics", cache_dir=tmp_path, offline=True)
    message = str(caught.value)
    assert "hf download Amazon-FAR/deltaworld-kinetics pytorch_model.bin" in message
    assert "local path" in message and "\n" not in message


def test_hf_hub_offline_environment_is_honoured(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DfbenchError, match="not in the local Hugging Face cache"):
        resolve_checkpoint("Amazon-FAR/deltaworld-kinetics", cache_dir=tmp_path)


def cache_hub_file(cache: Path, repo_id: str, filename: str, state: dict) -> Path:
    """Lays a file out as huggingface_hub's cache does (refs/main -> snapshots/<commit>)."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    torch.save({"state_dict": state}, snapshot / filename)
    return snapshot / filename


def test_cached_hub_id_loads_offline(tmp_path):
    source = tiny_world()
    cached = cache_hub_file(tmp_path, "Amazon-FAR/deltaworld-kinetics", "pytorch_model.bin", saved_entries(source))
    world = tiny_world()
    loaded = load_checkpoint(world, "Amazon-FAR/deltaworld-kinetics", "deltaworld", cache_dir=tmp_path, offline=True)
    assert loaded.path.resolve() == cached.resolve()
    assert loaded.source == "Amazon-FAR/deltaworld-kinetics"
    assert_loaded(world, saved_entries(source))


# -- our own checkpoints ------------------------------------------------------------------


def test_saved_deltaworld_round_trips_with_its_config(tmp_path):
    source = tiny_world()
    metadata = {"model": "deltaworld", "config": source.config.to_dict()}
    path = save_safetensors(source, tmp_path / "world.safetensors", metadata)
    assert set(load_state_dict(path)) == {k for k in source.state_dict() if k.startswith("predictor.")}
    assert read_safetensors_metadata(path) == metadata
    metadata = read_safetensors_metadata(path)
    assert metadata["model"] == "deltaworld"
    config = DeltaWorldConfig.from_dict(metadata["config"])
    assert config == source.config
    target = DeltaWorld(tiny_tokenizer(), config)
    load_checkpoint(target, path, "deltaworld")
    assert_loaded(target, saved_entries(source))


def test_saved_state_dict_keeps_every_entry(tmp_path):
    head = SegHead(8, 3)
    head.bn.num_batches_tracked.fill_(5)
    path = save_safetensors(head.state_dict(), tmp_path / "head.safetensors", {"dataset": "cityscapes"})
    assert_loaded(load_into(SegHead(8, 3), load_state_dict(path), "segmentation head"), head.state_dict())
    assert read_safetensors_metadata(path) == {"dataset": "cityscapes"}


def test_sha256_file(tmp_path):
    path = tmp_path / "blob.bin"
    path.write_bytes(bytes(range(256)) * 5000)
    assert sha256_file(path) == hashlib.sha256(path.read_bytes()).hexdigest()
