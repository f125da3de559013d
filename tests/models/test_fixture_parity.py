"""DeltaTok, DeltaWorld and DINO-world against the reference code's outputs (tiny fixture A).

Every network is built from the fixture's config, loaded with the reference checkpoints
through our loader, fed the reference backbone features and noise queries, and compared
in fp32 on the CPU (atol 1e-5: the reference itself moves by ~5e-7 with the thread count).
Every size (grid, horizons, samples, batch) comes from the fixture, so the same tests run
on any fixture of the reference generator (``DFBENCH_FIXTURE_A=path``).
"""

from __future__ import annotations

import pytest
import torch

from dfbench.checkpoints import load_into
from dfbench.models import DeltaTok, DeltaTokConfig, DeltaWorld, DeltaWorldConfig, DINOWorld, DINOWorldConfig, log_cosh
from dfbench.models.predictor import smooth_l1

ATOL = 1e-5


def close(actual: torch.Tensor, expected: torch.Tensor) -> None:
    assert actual.shape == expected.shape
    torch.testing.assert_close(actual, expected, atol=ATOL, rtol=0)


@pytest.fixture(scope="module")
def data(fixture_a):
    config, backbone = fixture_a["config"], fixture_a["outputs"]["backbone"]
    features = backbone["features"]
    h = config["frames"]["H"] // config["backbone_config"]["patch_size"]
    w = config["frames"]["W"] // config["backbone_config"]["patch_size"]
    assert features.shape[:3] == (config["frames"]["B"], config["frames"]["T"], h * w)
    return {
        "y": features,
        "black": backbone["black_frame_features"],
        "timestamps": fixture_a["inputs"]["timestamps"],
        "grid": (h, w),
        "ctx": config["ctx_len"],
        "samples": config["deltaworld"]["num_samples_eval"],
        "train_samples": config["deltaworld"]["num_samples_train"],
    }


@pytest.fixture(scope="module")
def tokenizer(fixture_a) -> DeltaTok:
    module = DeltaTok(DeltaTokConfig.from_fixture_config(fixture_a["config"]))
    return load_into(module, fixture_a["state_dicts"]["deltatok_checkpoint"], "deltatok").eval()


@pytest.fixture(scope="module")
def deltaworld(fixture_a, tokenizer) -> DeltaWorld:
    world = DeltaWorld(tokenizer, DeltaWorldConfig.from_fixture_config(fixture_a["config"]))
    return load_into(world, fixture_a["state_dicts"]["deltaworld_checkpoint"], "deltaworld").eval()


def dinoworld(fixture_a, use_bom: bool) -> DINOWorld:
    state = dict(fixture_a["state_dicts"]["dinoworld_checkpoint"])
    if use_bom:  # the BoM variant is the same predictor without the learned query
        del state["q_embed.weight"]
    model = DINOWorld(DINOWorldConfig.from_fixture_config(fixture_a["config"], use_bom=use_bom))
    return load_into(model, state, "dinoworld").eval()


# -- DeltaTok ------------------------------------------------------------------------------


def test_rope_tables(fixture_a, tokenizer, data):
    cos, sin = tokenizer.rope_tables(data["grid"])
    close(cos, fixture_a["outputs"]["deltatok"]["rope_cos"])
    close(sin, fixture_a["outputs"]["deltatok"]["rope_sin"])


def test_rope_tables_are_augmented_in_training_mode_only(tokenizer, data):
    eval_cos, _ = tokenizer.rope_tables(data["grid"])
    tokenizer.train()
    try:
        torch.manual_seed(0)
        train_cos, _ = tokenizer.rope_tables(data["grid"])
    finally:
        tokenizer.eval()
    assert not torch.allclose(train_cos, eval_cos)


@torch.no_grad()
def test_tokens_offline(fixture_a, tokenizer, data):
    tokens = tokenizer.tokenize_offline(data["black"], data["y"], data["grid"])
    close(tokens, fixture_a["outputs"]["deltatok"]["tokens_offline"])
    # A single black frame [N, D] broadcasts like the per-item one.
    close(tokenizer.tokenize_offline(data["black"][0], data["y"], data["grid"]), tokens)


@torch.no_grad()
def test_teacher_forced_reconstruction_and_log_cosh(fixture_a, tokenizer, data):
    y, expected = data["y"], fixture_a["outputs"]["deltatok"]
    batch, frames, n, d = y.shape
    prev = torch.cat([data["black"][:, None], y[:, :-1]], dim=1).reshape(batch * frames, n, d)
    z = expected["tokens_offline"].reshape(batch * frames, 1, d)
    recon = tokenizer.decode(z, prev, data["grid"]).reshape(batch, frames, n, d)
    close(recon, expected["recon_teacher_forced"])
    close(log_cosh(recon, y), expected["logcosh_recon_vs_target_mean"])


@torch.no_grad()
def test_encode_pair(fixture_a, tokenizer, data):
    z = tokenizer.encode(data["y"][:, 0], data["y"][:, 1], data["grid"])
    close(z, fixture_a["outputs"]["deltatok"]["encode_pair_frame0_to_frame1"])


@torch.no_grad()
def test_closed_loop_rollout(fixture_a, tokenizer, data, deltatok_horizon):
    # deltatok_horizon: one test per horizon of the fixture's config (tests/conftest.py)
    preds = tokenizer.rollout(data["y"], deltatok_horizon, data["black"], data["grid"])
    close(preds, fixture_a["outputs"]["deltatok"]["rollouts"][f"h{deltatok_horizon}"]["preds"])


def test_every_tokenizer_rollout_of_the_fixture_is_checked(fixture_a):
    horizons = fixture_a["config"]["deltatok_horizons"]
    assert set(fixture_a["outputs"]["deltatok"]["rollouts"]) == {f"h{h}" for h in horizons}


@torch.no_grad()
def test_tokenizer_built_on_meta_device_matches(fixture_a, tokenizer, data):
    # The fast path: no random init, the checkpoint's tensors are taken as they are.
    with torch.device("meta"):
        fast = DeltaTok(DeltaTokConfig.from_fixture_config(fixture_a["config"]))
    load_into(fast, dict(fixture_a["state_dicts"]["deltatok_checkpoint"]), "deltatok").eval()
    args = (data["y"], max(fixture_a["config"]["deltatok_horizons"]), data["black"], data["grid"])
    close(fast.rollout(*args), tokenizer.rollout(*args))


# -- DeltaWorld ----------------------------------------------------------------------------


def deltaworld_rollout(fixture_a, world, data, noise=None):
    ctx, ts = data["ctx"], data["timestamps"]
    queries = fixture_a["outputs"]["deltaworld"]["queries"]
    return world.rollout(
        data["y"][:, :ctx], ts[:, :ctx], ts[:, ctx:], data["grid"], num_samples=queries.shape[2],
        noise=queries if noise is None else noise, x_black=data["black"], return_tokens=True,
    )


def test_deltaworld_context_tokens(fixture_a, deltaworld, data):
    tokens = deltaworld.context_tokens(data["y"], data["black"], data["grid"])
    close(tokens, fixture_a["outputs"]["deltaworld"]["z_tokens"])


def test_deltaworld_rollout(fixture_a, deltaworld, data):
    expected = fixture_a["outputs"]["deltaworld"]
    preds, tokens = deltaworld_rollout(fixture_a, deltaworld, data)
    close(preds, expected["preds"])
    steps, rows, _, d = expected["predictor_outputs"].shape
    close(tokens.reshape(rows, steps, d).transpose(0, 1)[:, :, None], expected["predictor_outputs"])
    close(data["y"][:, data["ctx"] :], expected["tgts"])


def test_deltaworld_noise_callable_equals_tensor(fixture_a, deltaworld, data):
    queries = fixture_a["outputs"]["deltaworld"]["queries"]
    from_tensor, _ = deltaworld_rollout(fixture_a, deltaworld, data)
    from_callable, _ = deltaworld_rollout(fixture_a, deltaworld, data, noise=lambda step: queries[step])
    assert torch.equal(from_tensor, from_callable)


def test_deltaworld_best_and_mean_of_samples(fixture_a, deltaworld, data):
    expected = fixture_a["outputs"]["deltaworld"]
    preds, _ = deltaworld_rollout(fixture_a, deltaworld, data)
    target = expected["tgts"][:, -1]
    losses = smooth_l1(preds[:, :, -1], target[:, None].expand_as(preds[:, :, -1])).mean(dim=(-2, -1))
    close(losses, expected["bom_last_step_loss"])
    best = losses.argmin(dim=1)
    assert torch.equal(best, expected["best_idx"])
    close(preds[torch.arange(preds.shape[0]), best], expected["best_rollout"])
    close(preds.mean(dim=1), expected["mean_rollout"])


def test_deltaworld_samples_are_batch_major(fixture_a, deltaworld, data):
    # The last item alone, with its own noise, gives the rows of that item in the batched rollout.
    queries, ctx, ts = fixture_a["outputs"]["deltaworld"]["queries"], data["ctx"], data["timestamps"]
    assert queries.shape[2] == data["samples"]
    single = deltaworld.rollout(
        data["y"][-1:, :ctx], ts[-1:, :ctx], ts[-1:, ctx:], data["grid"], num_samples=queries.shape[2],
        noise=queries[:, -1:], x_black=data["black"][-1:],
    )
    close(single[0], fixture_a["outputs"]["deltaworld"]["preds"][-1])


# -- DINO-world ----------------------------------------------------------------------------


def test_dinoworld_rollout(fixture_a, data):
    ctx, ts = data["ctx"], data["timestamps"]
    preds = dinoworld(fixture_a, use_bom=False).rollout(data["y"][:, :ctx], ts[:, :ctx], ts[:, ctx:], data["grid"])
    close(preds, fixture_a["outputs"]["dinoworld"]["preds"])


def test_dinoworld_bom_rollout(fixture_a, data):
    ctx, ts = data["ctx"], data["timestamps"]
    queries = fixture_a["outputs"]["dinoworld_bom"]["queries"]
    model = dinoworld(fixture_a, use_bom=True)
    preds = model.rollout(
        data["y"][:, :ctx], ts[:, :ctx], ts[:, ctx:], data["grid"], num_samples=queries.shape[2], noise=queries
    )
    close(preds, fixture_a["outputs"]["dinoworld_bom"]["preds"])


def test_dinoworld_grid_coordinates(fixture_a, data):
    from dfbench.models.dinoworld import frame_positions

    positions = frame_positions(data["timestamps"][:, :1], data["grid"])
    close(positions[0, :, 1], fixture_a["outputs"]["dinoworld"]["w_coords"])
    close(positions[0, :, 2], fixture_a["outputs"]["dinoworld"]["h_coords"])


def test_deterministic_models_refuse_several_samples(fixture_a, data):
    ctx, ts = data["ctx"], data["timestamps"]
    with pytest.raises(ValueError, match="num_samples must be 1"):
        dinoworld(fixture_a, use_bom=False).rollout(
            data["y"][:, :ctx], ts[:, :ctx], ts[:, ctx:], data["grid"], num_samples=2
        )


# -- variants without fixture outputs: frame tokens, learned-query DeltaWorld ------------------


def test_frame_token_deltaworld_rolls_out(fixture_a, data):
    torch.manual_seed(0)
    config = DeltaTokConfig.from_fixture_config(fixture_a["config"])
    config.use_delta = False
    tokenizer = DeltaTok(config).eval()
    world = DeltaWorld(tokenizer, DeltaWorldConfig.from_fixture_config(fixture_a["config"])).eval()
    ctx, ts, (b, t, n, d) = data["ctx"], data["timestamps"], data["y"].shape
    width, samples = world.config.predictor.hidden_size, data["samples"]
    noise = torch.randn(t - ctx, b, samples, 1, width, generator=torch.Generator().manual_seed(1))
    preds = world.rollout(data["y"][:, :ctx], ts[:, :ctx], ts[:, ctx:], data["grid"], samples, noise * 0.5, data["black"])
    assert preds.shape == (b, samples, t - ctx, n, d) and torch.isfinite(preds).all()
    assert not torch.allclose(preds[:, 0], preds[:, 1])
    # A frame token ignores the previous frame: the encoder sees only the current one.
    z = tokenizer.encode(data["y"][:, 0], data["y"][:, 1], data["grid"])
    torch.testing.assert_close(tokenizer.encode(data["black"], data["y"][:, 1], data["grid"]), z)


def test_learned_query_deltaworld_is_deterministic(fixture_a, tokenizer, data):
    config = DeltaWorldConfig.from_fixture_config(fixture_a["config"])
    config.use_bom = False
    world = DeltaWorld(tokenizer, config).eval()
    assert "q_embed.weight" in world.state_dict()
    ctx, ts = data["ctx"], data["timestamps"]
    args = (data["y"][:, :ctx], ts[:, :ctx], ts[:, ctx:], data["grid"])
    first = world.rollout(*args, x_black=data["black"])
    assert first.shape[1] == 1
    assert torch.equal(first, world.rollout(*args, x_black=data["black"]))


# -- training ------------------------------------------------------------------------------


def test_deltaworld_training_trains_the_predictor_only(fixture_a, deltaworld, data):
    deltaworld.train()
    try:
        assert not deltaworld.tokenizer.training
        loss = deltaworld.training_loss(
            data["y"], data["black"], data["timestamps"], data["grid"], num_samples=data["train_samples"],
            generator=torch.Generator().manual_seed(0),
        )
        loss.backward()
    finally:
        deltaworld.eval()
    assert loss.ndim == 0 and loss.item() > 0
    assert all(p.grad is None for p in deltaworld.tokenizer.parameters())
    grads = [p.grad for p in deltaworld.predictor.parameters()]
    assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads)
    deltaworld.zero_grad(set_to_none=True)


def test_best_of_many_trains_the_best_candidate(fixture_a, deltaworld, data):
    # Two frames -> one target: the BoM loss is the smallest single-candidate loss.
    y, ts, black, grid = data["y"][:, :2], data["timestamps"][:, :2], data["black"], data["grid"]
    samples, width, std = data["train_samples"], deltaworld.config.predictor.hidden_size, deltaworld.config.noise_std
    with torch.no_grad():
        bom = deltaworld.training_loss(y, black, ts, grid, samples, torch.Generator().manual_seed(3))
        noise = torch.randn(y.shape[0], 1, samples, width, generator=torch.Generator().manual_seed(3)) * std
        z = deltaworld.context_tokens(y, black, grid)
        per_sample = []
        for s in range(samples):
            pred = deltaworld.predictor(noise[:, :, s], z[:, :1], ts[:, 1:, None], ts[:, :1, None])
            per_sample.append(smooth_l1(pred, z[:, 1:]).mean(dim=(1, 2)))
        best = torch.stack(per_sample, dim=1).min(dim=1).values.mean()
    torch.testing.assert_close(bom, best, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("use_bom", [False, True])
def test_dinoworld_training_loss_backpropagates(fixture_a, data, use_bom):
    model = dinoworld(fixture_a, use_bom).train()
    generator = torch.Generator().manual_seed(0)
    samples = fixture_a["config"]["dinoworld"]["num_samples_train"]
    loss = model.training_loss(data["y"], data["timestamps"], data["grid"], num_samples=samples, generator=generator)
    loss.backward()
    assert loss.ndim == 0 and torch.isfinite(loss)
    assert model.predictor.head.weight.grad.abs().sum() > 0
    if not use_bom:
        assert model.q_embed.weight.grad.abs().sum() > 0


def test_teacher_forcing_mask_is_causal(deltaworld, data):
    # Under the training mask the query of frame t sees keys of frames 0..t-1 only.
    from dfbench.models.predictor import causal_mask

    z = deltaworld.context_tokens(data["y"], data["black"], data["grid"])
    ts, frames = data["timestamps"], z.shape[1]
    width = deltaworld.config.predictor.hidden_size
    q = torch.randn(z.shape[0], frames - 1, width, generator=torch.Generator().manual_seed(0))
    mask = causal_mask(torch.arange(1, frames), torch.arange(0, frames - 1))
    with torch.no_grad():
        base = deltaworld.predictor(q, z[:, :-1], ts[:, 1:, None], ts[:, :-1, None], mask)
        changed_kv = z[:, :-1].clone()
        changed_kv[:, -1] += 1.0
        changed = deltaworld.predictor(q, changed_kv, ts[:, 1:, None], ts[:, :-1, None], mask)
    assert torch.equal(changed[:, :-1], base[:, :-1])
    assert not torch.allclose(changed[:, -1], base[:, -1])


def test_bf16_deltaworld_stays_near_the_fp32_reference(fixture_a, data):
    # A module cast to bf16 runs end to end (RoPE tables follow the token dtype, positions
    # stay fp32) and lands within bf16 rounding of the reference.
    tokenizer = DeltaTok(DeltaTokConfig.from_fixture_config(fixture_a["config"]))
    load_into(tokenizer, fixture_a["state_dicts"]["deltatok_checkpoint"], "deltatok")
    world = DeltaWorld(tokenizer, DeltaWorldConfig.from_fixture_config(fixture_a["config"]))
    world = load_into(world, fixture_a["state_dicts"]["deltaworld_checkpoint"], "deltaworld").to(torch.bfloat16)
    ctx, ts, expected = data["ctx"], data["timestamps"], fixture_a["outputs"]["deltaworld"]
    preds = world.eval().rollout(
        data["y"][:, :ctx].bfloat16(), ts[:, :ctx], ts[:, ctx:], data["grid"], num_samples=expected["queries"].shape[2],
        noise=expected["queries"], x_black=data["black"].bfloat16(),
    )
    assert preds.dtype == torch.bfloat16
    error = (preds.float() - expected["preds"]).abs()
    assert error.mean() < 0.01 and error.max() < 0.2
