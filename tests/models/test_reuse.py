"""Work saved per clip gives the numbers of the direct computation.

The predictors project their context's keys/values once per rollout, the RoPE tables
are computed once per set of tokens, DeltaTok's encoder computes only the z row in its
last block and DeltaWorld encodes each distinct frame pair once. Each is checked here
against the computation it replaces, written out plainly, on tiny random networks
whose LayerScales are 1 (so every block matters).
"""

from __future__ import annotations

import math

import pytest
import torch

from dfbench.models import DeltaTok, DeltaTokConfig, DeltaWorld, DeltaWorldConfig, DINOWorld, DINOWorldConfig
from dfbench.models.dinoworld import frame_positions
from dfbench.models.pair_memo import PairTokenMemo
from dfbench.models.predictor import Predictor, PredictorConfig
from dfbench.models.rope import apply_axis_tables, axis_tables, rotate_axes

GRID = (2, 3)
WIDTH = 32


def spread(module: torch.nn.Module) -> torch.nn.Module:
    """Weights of unit gain instead of the std-0.02 init, so that outputs are O(1)."""
    for layer in module.modules():
        if isinstance(layer, torch.nn.Linear):
            torch.nn.init.normal_(layer.weight, std=layer.in_features**-0.5)
            if layer.bias is not None:
                torch.nn.init.normal_(layer.bias, std=0.1)
    return module


def predictor_config(axes: tuple[int, ...]) -> PredictorConfig:
    return PredictorConfig(
        input_size=WIDTH, hidden_size=WIDTH, num_layers=2, num_heads=2, rope_axis_sizes=axes,
        rope_unrotated_size=16 - sum(axes), mlp_ratio=2, layer_scale_init=1.0,
    )


def tokenizer(use_delta: bool = True) -> DeltaTok:
    torch.manual_seed(0)
    config = DeltaTokConfig(hidden_size=WIDTH, num_heads=2, num_layers=2, intermediate_size=48,
                            use_delta=use_delta, layer_scale_init=1.0)
    return spread(DeltaTok(config)).eval()


def close(actual: torch.Tensor, expected: torch.Tensor, atol: float = 1e-5) -> None:
    assert actual.shape == expected.shape
    torch.testing.assert_close(actual, expected, atol=atol, rtol=0)


# -- RoPE tables ---------------------------------------------------------------------------


def test_rope_tables_rotate_every_head_as_the_formula():
    torch.manual_seed(0)
    axes, unrotated = (4, 6), 2
    x = torch.randn(2, 3, 5, sum(axes) + unrotated, dtype=torch.float64)
    positions = torch.randn(2, 5, 2) * 0.1  # angles stay small enough for fp32 to keep 1e-4
    out = rotate_axes(x, positions, axes, unrotated)
    start = 0
    for axis, size in enumerate(axes):
        half = size // 2
        for i in range(half):
            inv = 1.0 / 10.0 ** (-2.0 + 4.0 * i / (half - 1))
            angle = 2 * math.pi * positions[..., axis].double()[:, None] * inv  # [B, 1, L]
            rotated = torch.complex(x[..., start + i], x[..., start + half + i]) * torch.exp(1j * angle)
            close(out[..., start + i], rotated.real, atol=1e-4)
            close(out[..., start + half + i], rotated.imag, atol=1e-4)
        start += size
    assert torch.equal(out[..., start:], x[..., start:])


def test_rope_tables_of_items_serve_their_sample_rows():
    positions = torch.randn(2, 5, 3)
    per_item = axis_tables(positions, (4, 4, 4), torch.float32, rows=6)
    per_row = axis_tables(positions.repeat_interleave(3, dim=0), (4, 4, 4), torch.float32)
    for (cos, sin), (cos_row, sin_row) in zip(per_item, per_row):
        assert cos.shape == (6, 1, 5, 2)
        assert torch.equal(cos, cos_row) and torch.equal(sin, sin_row)
    with pytest.raises(ValueError, match="multiple"):
        axis_tables(positions, (4, 4, 4), torch.float32, rows=5)


def test_fp32_tables_rotate_bf16_tensors_in_bf16():
    # Under autocast the projections are bf16 while the tables are fp32: the rotation must
    # stay in bf16 with bf16-rounded tables, as the reference casts its angles.
    x = torch.randn(2, 3, 5, 16).to(torch.bfloat16)
    positions = torch.randn(2, 5, 3)
    rotated = apply_axis_tables(x, axis_tables(positions, (4, 4, 4)), (4, 4, 4), 4)
    assert rotated.dtype == torch.bfloat16
    assert torch.equal(rotated, apply_axis_tables(x, axis_tables(positions, (4, 4, 4), torch.bfloat16), (4, 4, 4), 4))


# -- Predictor: context keys/values projected once -----------------------------------------


@pytest.mark.parametrize("dtype, atol", [(torch.float32, 1e-5), (torch.bfloat16, 2e-2)])
def test_context_keys_values_equal_the_direct_projection(dtype, atol):
    torch.manual_seed(0)
    predictor = spread(Predictor(predictor_config((4, 4, 4)))).eval().to(dtype)
    items, samples, ctx_len, own_len, queries = 2, 3, 7, 4, 5
    ctx = torch.randn(items, ctx_len, WIDTH, dtype=dtype)
    own = torch.randn(items * samples, own_len, WIDTH, dtype=dtype)
    pos_ctx, pos_own, pos_q = torch.randn(items, ctx_len, 3), torch.randn(items, own_len, 3), torch.randn(items, queries, 3)
    q = torch.randn(items * samples, queries, WIDTH, dtype=dtype)
    with torch.no_grad():
        reused = predictor(q, own, pos_q, pos_own, context=predictor.project_context(ctx, pos_ctx))
        kv = torch.cat([ctx.repeat_interleave(samples, 0), own], dim=1)
        pos_k = torch.cat([pos_ctx, pos_own], dim=1).repeat_interleave(samples, 0)
        direct = predictor(q, kv, pos_q.repeat_interleave(samples, 0), pos_k)
        only_context = predictor(q, None, pos_q, None, context=predictor.project_context(ctx, pos_ctx))
        direct_context = predictor(q, ctx.repeat_interleave(samples, 0), pos_q.repeat_interleave(samples, 0),
                                   pos_ctx.repeat_interleave(samples, 0))
    close(reused.float(), direct.float(), atol)
    close(only_context.float(), direct_context.float(), atol)
    assert (reused.float() - only_context.float()).abs().max() > 0.1  # the own tokens do matter
    with pytest.raises(ValueError, match="needs keys"):
        predictor(q, None, pos_q, None)


def dinoworld_direct(world: DINOWorld, y_ctx, ctx_ts, tgt_ts, samples, noise) -> torch.Tensor:
    """DINO-world's rollout as first written: every sample and step projects all keys."""
    batch, ctx, n, d = y_ctx.shape
    width = world.config.predictor.hidden_size
    kv = y_ctx.reshape(batch, ctx * n, d).repeat_interleave(samples, dim=0)
    pos_k = frame_positions(ctx_ts, GRID).repeat_interleave(samples, dim=0)
    pos_targets = frame_positions(tgt_ts, GRID).repeat_interleave(samples, dim=0)
    frames = []
    for step in range(tgt_ts.shape[1]):
        if world.config.use_bom:
            q = noise[step].reshape(batch * samples, 1, width).expand(-1, n, -1)
        else:
            q = world.q_embed.weight.expand(batch * samples, n, width)
        pos_q = pos_targets[:, step * n : (step + 1) * n]
        y_hat = world.predictor(q, kv, pos_q, pos_k)
        kv, pos_k = torch.cat([kv, y_hat], dim=1), torch.cat([pos_k, pos_q], dim=1)
        frames.append(y_hat)
    return torch.stack(frames, dim=1).reshape(batch, samples, len(frames), n, d)


@pytest.mark.parametrize("use_bom, samples", [(True, 3), (False, 1)])
def test_dinoworld_rollout_equals_the_direct_rollout(use_bom, samples):
    torch.manual_seed(0)
    world = spread(DINOWorld(DINOWorldConfig(predictor=predictor_config((4, 4, 4)), use_bom=use_bom))).eval()
    y_ctx = torch.randn(2, 4, 6, WIDTH)
    ctx_ts, tgt_ts = torch.arange(4.0).expand(2, -1) * 0.2, (4 + torch.arange(3.0)).expand(2, -1) * 0.2
    noise = torch.randn(3, 2, samples, 1, WIDTH) * 0.5 if use_bom else None
    with torch.no_grad():
        direct = dinoworld_direct(world, y_ctx, ctx_ts, tgt_ts, samples, noise)
    close(world.rollout(y_ctx, ctx_ts, tgt_ts, GRID, samples, noise), direct)


def deltaworld_direct(world: DeltaWorld, y_ctx, ctx_ts, tgt_ts, samples, noise, black) -> torch.Tensor:
    """DeltaWorld's rollout as first written: every step projects all samples' keys."""
    batch, ctx, n, d = y_ctx.shape
    width = world.config.predictor.hidden_size
    kv = world.tokenizer.tokenize_offline(black, y_ctx, GRID)[:, :, 0].repeat_interleave(samples, dim=0)
    x = y_ctx[:, -1].repeat_interleave(samples, dim=0)
    times = torch.cat([ctx_ts, tgt_ts], dim=1).repeat_interleave(samples, dim=0)[..., None]
    features = []
    for step in range(tgt_ts.shape[1]):
        if world.config.use_bom:
            q = noise[step].reshape(batch * samples, 1, width)
        else:
            q = world.q_embed.weight.expand(batch * samples, 1, width)
        known = ctx + step
        z_hat = world.predictor(q, kv, times[:, known : known + 1], times[:, :known])
        x = world.tokenizer.decode(z_hat, x, GRID)
        kv = torch.cat([kv, z_hat], dim=1)
        features.append(x)
    return torch.stack(features, dim=1).reshape(batch, samples, len(features), n, d)


@pytest.mark.parametrize("use_bom, samples", [(True, 3), (False, 1)])
def test_deltaworld_rollouts_over_both_windows_equal_the_direct_rollouts(use_bom, samples):
    torch.manual_seed(1)
    world = DeltaWorld(tokenizer(), DeltaWorldConfig(predictor=predictor_config((12,)), use_bom=use_bom))
    spread(world.predictor).eval()
    y = torch.randn(2, 7, 6, WIDTH)
    black = torch.randn(6, WIDTH)
    ts = torch.arange(7.0).expand(2, -1) * 0.1875
    generator = torch.Generator().manual_seed(0)
    for ctx, tgt in ((slice(2, 6), slice(6, 7)), (slice(0, 4), slice(4, 7))):  # short, then mid
        steps = tgt.stop - tgt.start
        noise = torch.randn(steps, 2, samples, 1, WIDTH, generator=generator) * 0.5 if use_bom else None
        with torch.no_grad():
            direct = deltaworld_direct(world, y[:, ctx], ts[:, ctx], ts[:, tgt], samples, noise, black)
        close(world.rollout(y[:, ctx], ts[:, ctx], ts[:, tgt], GRID, samples, noise, x_black=black), direct)


# -- DeltaTok: the encoder's last block computes z only -------------------------------------


@pytest.mark.parametrize("use_delta", [True, False])
def test_encoder_last_block_on_z_only_equals_the_full_block(use_delta):
    tok = tokenizer(use_delta)
    prev, cur = torch.randn(3, 6, WIDTH), torch.randn(3, 6, WIDTH)
    cos, sin = tok.rope_tables(GRID)
    parts = [tok.z_embed.weight.expand(3, 1, -1)]
    if use_delta:
        parts.append(prev + tok.xy_embed.weight[0])
        cos, sin = torch.cat([cos, cos]), torch.cat([sin, sin])
    parts.append(cur + tok.xy_embed.weight[1])
    with torch.no_grad():
        full = tok.norm(tok._run(tok.encoder_blocks, torch.cat(parts, dim=1), (cos, sin))[:, :1])
        close(tok.encode(prev, cur, GRID, z_only=True), full)
        assert torch.equal(tok.encode(prev, cur, GRID), full)
        with pytest.raises(ValueError, match="prefix"):
            tok.encoder_blocks[-1].forward_prefix(torch.cat(parts, dim=1), (cos, sin), 2)


# -- DeltaWorld: each distinct frame pair encoded once ---------------------------------------


class CountingTokenizer:
    """Counts the pairs the real tokenizer encodes (wrapping its real encode)."""

    def __init__(self, tok: DeltaTok) -> None:
        self.tok, self.pairs = tok, 0

    def encode(self, prev, cur, grid, z_only=False):
        self.pairs += prev.shape[0]
        return self.tok.encode(prev, cur, grid, z_only)

    def parameters(self):
        return self.tok.parameters()

    @property
    def training(self) -> bool:
        return self.tok.training


def test_pair_memo_encodes_the_shared_pair_of_the_two_windows_once():
    tok = tokenizer()
    counting, memo = CountingTokenizer(tok), PairTokenMemo()
    y, other = torch.randn(2, 7, 6, WIDTH), torch.randn(2, 7, 6, WIDTH)
    black = torch.randn(2, 6, WIDTH)
    with torch.no_grad():
        short = memo.tokens(counting, black, y[:, 2:6], GRID)
        assert counting.pairs == 8
        mid = memo.tokens(counting, black, y[:, 0:4], GRID)
        assert counting.pairs == 8 + 6  # (frame 2, frame 3) of each crop was already encoded
        close(short, tok.tokenize_offline(black, y[:, 2:6], GRID)[:, :, 0])
        close(mid, tok.tokenize_offline(black, y[:, 0:4], GRID)[:, :, 0])
        assert len(memo) == 8  # one window's tokens, not a growing store
        memo.tokens(counting, black, other[:, 0:4], GRID)  # the next clip forgets this one
        assert counting.pairs == 14 + 8
        memo.tokens(counting, black, y[:, 0:4], GRID)
        assert counting.pairs == 22 + 8
        memo.tokens(counting, black, y[:, 0:4], (3, 2))  # another grid is another pair
        assert counting.pairs == 30 + 8
        memo.clear()
        memo.tokens(counting, black, y[:, 0:4], (3, 2))
        assert counting.pairs == 38 + 8
        memo.tokens(counting, black, y[:, 0:4], (3, 2))
        assert counting.pairs == 46
        tok.norm.weight.mul_(2.0)  # as load_state_dict copies weights in: remembered tokens are stale
        again = memo.tokens(counting, black, y[:, 0:4], (3, 2))
        assert counting.pairs == 46 + 8
        close(again, tok.tokenize_offline(black, y[:, 0:4], (3, 2))[:, :, 0])


def test_pair_memo_encodes_repeated_frames_once():
    tok = tokenizer()
    counting, memo = CountingTokenizer(tok), PairTokenMemo()
    frame = torch.randn(6, WIDTH)
    y = frame.expand(2, 3, 6, WIDTH)  # both crops: black -> f, f -> f, f -> f
    black = torch.zeros(2, 6, WIDTH)
    with torch.no_grad():
        tokens = memo.tokens(counting, black, y, GRID)
    assert counting.pairs == 2
    close(tokens, tok.tokenize_offline(black, y.contiguous(), GRID)[:, :, 0])
