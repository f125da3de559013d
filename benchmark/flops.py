"""Per-component GFLOPs of the world models (the paper's Table B) and rollout totals (Table 2).

Every figure is counted by ``torch.utils.flop_counter.FlopCounterMode`` while the real
modules run: the DINOv3 ViT-B/16 backbone (transformers, random weights), ``DeltaTok`` and
the ``Predictor`` at the released ViT-B sizes. By default they run on the meta device, so
nothing is computed or allocated; ``device="cpu"`` (or ``"cuda"``) runs the arithmetic and
counts the same numbers.

Conventions, worked out from the paper's Table B against its Table 2:

* **One square crop, one sample.** A Table B entry is one forward pass on one square crop
  (256 px: a 16x16 grid of N = 256 tokens) for one sample. A Table 2 total is
  ``2 x (shared + S x per-sample)``: two square crops per clip (appendix B), the shared part
  (backbone on the C context frames, plus the DeltaTok encoder on them for DeltaWorld) once
  per crop, and per sample the predictor at context C, C+1, ..., C+K-1 plus, for the
  DeltaWorld family, the DeltaTok decoder at each of the K rollout steps. With C = 4, K = 3
  (mid horizon), S = 20 and the paper convention below this gives 958.8 / 12009.8 / 6318.3
  / 6724.8 GFLOPs for DINO-world, DINO-world with BoM, frame tokens and DeltaWorld, against
  Table 2's 959 / 12013 / 6315 / 6721 (all within 0.06%).
* **2 FLOPs per multiply-add**, for linear layers and attention alike; norms, activations,
  softmax and RoPE are not counted. Our Table B entries are within 0.04 GFLOPs of the
  paper's (its profiler, DeepSpeed's, counts some elementwise work too).
* **Attention is counted explicitly.** On the CPU, ``F.scaled_dot_product_attention``
  dispatches to ``aten._scaled_dot_product_flash_attention_for_cpu``, which torch's counter
  has no formula for, so attention would silently count as zero (the DeltaTok decoder at
  256 px would show 43.71 instead of 46.15 GFLOPs). We give the counter torch's own SDPA
  formula for that op (``4 * B * H * Lq * Lk * d``: q k^T plus attention times v). On the
  meta device SDPA takes its math path, whose two ``bmm`` the counter already sees; on CUDA
  the fused kernels have formulas in torch.
* **The paper's convention counts the predictor's attention twice.** Its DINO-world entries
  84.88 / 96.96 / 109.04 are the predictor's linear layers (65.53 / 72.78 / 80.03) plus two
  times its attention (9.66 / 12.08 / 14.50), whereas its DeltaTok decoder entry (46.12)
  and the backbone share of its totals count attention once. ``gflops`` is the correct
  count; ``paper_convention_gflops`` adds the predictor's attention a second time, which
  reproduces Table B and Table 2. For DeltaWorld's predictor (one query, 4-6 keys) the two
  differ by less than 0.001 GFLOPs; for DINO-world the correct count is 75.20 / 84.86 /
  94.52.
* The black frame's backbone features (DeltaWorld's first context token encodes
  "black -> first frame") are a constant per resolution that no clip has to recompute, so
  they are not counted; the paper's totals leave them out too.

Files written by ``dfbench flops`` (see :mod:`dfbench.cli.flops`): ``flops_components.csv``
(one row per Table B entry) and ``flops.csv`` (``model,gflops`` totals, the file
``dfbench table main`` reads from its results folder for the GFLOPs column).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import torch
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count
from transformers import AutoModel, DINOv3ViTConfig

from dfbench.errors import DfbenchError
from dfbench.models import DeltaTok, DeltaTokConfig, DeltaWorldConfig, DINOWorldConfig, Predictor

aten = torch.ops.aten

# Two square crops per clip (appendix B: "All GFLOPs are computed for square inputs and doubled").
CROPS = 2
PATCH_SIZE = 16
RESOLUTIONS = (256, 512)
MID_STEPS = 3
# Pixel-space models (Cosmos): counted at their own input size by dfbench.flops_pixels.
PIXEL_FAMILY = "pixel"


@dataclass(frozen=True)
class FlopsModel:
    """Which modules a model runs per crop (from its :class:`~dfbench.adapters.spec.ModelSpec`).

    Attributes:
        family: ``deltaworld`` (backbone, DeltaTok, token predictor) or ``dino-world``
            (backbone, frame predictor): the spec's ``architecture``.
        sampled: draws ``num_samples`` futures; False for the deterministic models (one).
        use_delta: DeltaTok variant (False: frame tokens, Table 2 step 2).
        reported: the model's row in Table 2 of the reported numbers, if any.
    """

    family: str
    sampled: bool
    use_delta: bool = True
    reported: str | None = None


def _flops_models() -> dict[str, FlopsModel]:
    from dfbench.registry import builtin_model_specs

    return {
        spec.name: FlopsModel(
            family=spec.architecture or PIXEL_FAMILY,
            sampled=spec.stochastic,
            use_delta=spec.tokens != "frame",
            reported=spec.table.flops_reference if spec.table else None,
        )
        for spec in builtin_model_specs()
        if spec.architecture is not None or spec.pixel_input is not None
    }


# Every built-in model with a dfbench.models architecture, in table order.
MODELS: dict[str, FlopsModel] = _flops_models()
# DINO-Foresight's count depends only on its released config (dfbench.flops_foresight).
FORESIGHT_FAMILY = "dino-foresight"
MODELS.setdefault("dino-foresight", FlopsModel(family=FORESIGHT_FAMILY, sampled=False))

# Ops that carry attention: the fused SDPA kernels, or the two bmm of SDPA's math path
# (meta device). No other layer of these models reaches the counter as bmm: linear layers
# arrive as mm / addmm.
ATTENTION_OPS = frozenset(
    {
        aten.bmm,
        aten._scaled_dot_product_flash_attention_for_cpu,
        aten._scaled_dot_product_flash_attention,
        aten._scaled_dot_product_efficient_attention,
        aten._scaled_dot_product_cudnn_attention,
    }
)


def _cpu_sdpa_flop(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    """torch's SDPA formula, for the CPU kernel that torch's counter does not know."""
    return sdpa_flop_count(query_shape, key_shape, value_shape)


@dataclass(frozen=True)
class FlopCount:
    """FLOPs of one call, with the attention share kept apart."""

    total: int
    attention: int


def flop_counter() -> FlopCounterMode:
    """A silent FlopCounterMode that also counts attention on the CPU."""
    return FlopCounterMode(
        display=False, custom_mapping={aten._scaled_dot_product_flash_attention_for_cpu: _cpu_sdpa_flop}
    )


def count_flops(fn: Callable[[], object]) -> FlopCount:
    """FLOPs of ``fn()`` (run without gradient), at 2 FLOPs per multiply-add."""
    counter = flop_counter()
    with counter, torch.no_grad():
        fn()
    per_op = counter.get_flop_counts().get("Global", {})
    attention = sum(v for op, v in per_op.items() if op in ATTENTION_OPS)
    return FlopCount(total=counter.get_total_flops(), attention=attention)


def vitb_backbone_config() -> DINOv3ViTConfig:
    """DINOv3 ViT-B/16, the released dinov3-vitb16 sizes; other fields keep the class defaults."""
    return DINOv3ViTConfig(
        hidden_size=768,
        num_hidden_layers=12,
        num_attention_heads=12,
        intermediate_size=3072,
        patch_size=16,
        num_register_tokens=4,
        key_bias=False,
    )


@cache
def _module(kind: str, device: str, use_delta: bool = True) -> torch.nn.Module:
    """A ViT-B module in eval mode, random weights (none at all on the meta device).

    Cached per kind and device, so counting several models builds each network once.
    """
    with torch.device(device):
        if kind == "backbone":
            module = AutoModel.from_config(vitb_backbone_config(), attn_implementation="sdpa")
        elif kind == "tokenizer":
            module = DeltaTok(DeltaTokConfig.vitb(use_delta=use_delta))
        elif kind == "deltaworld":
            module = Predictor(DeltaWorldConfig.vitb().predictor)
        else:
            module = Predictor(DINOWorldConfig.vitb().predictor)
    return module.eval().requires_grad_(False)


@dataclass(frozen=True)
class Component:
    """One Table B entry: a module call on one square crop."""

    group: str  # "shared" (once per crop) or "per sample"
    label: str
    key: str  # the reported-numbers key
    count: FlopCount
    predictor: bool = False


def _check(model: str, resolution: int, context: int, num_samples: int, steps: int) -> None:
    if model not in MODELS:
        raise DfbenchError(f"no FLOPs model '{model}'; choose one of {', '.join(MODELS)}.")
    whole_frames = MODELS[model].family in (PIXEL_FAMILY, FORESIGHT_FAMILY)
    if not whole_frames and (resolution % PATCH_SIZE or resolution <= 0):
        raise DfbenchError(f"resolution {resolution} is not a positive multiple of the patch size {PATCH_SIZE}.")
    if context < 1 or num_samples < 1 or steps < 1:
        raise DfbenchError("context, num_samples and steps must all be at least 1.")


@cache
def _components(
    family: str, use_delta: bool, resolution: int, context: int, steps: int, device: str
) -> tuple[Component, ...]:
    """Counts every component call once (cached: the counts depend on shapes only)."""
    grid = (resolution // PATCH_SIZE, resolution // PATCH_SIZE)
    n, width = grid[0] * grid[1], vitb_backbone_config().hidden_size

    def zeros(*shape: int) -> torch.Tensor:
        return torch.zeros(*shape, device=device)

    backbone = _module("backbone", device)
    parts = [
        Component(
            "shared",
            f"Backbone ({context} frames)",
            "backbone",
            count_flops(lambda: backbone(pixel_values=zeros(context, 3, resolution, resolution))),
        )
    ]
    predictor = _module(family, device)
    hidden, axes = predictor.config.hidden_size, len(predictor.config.rope_axis_sizes)
    if family == "deltaworld":
        tokenizer = _module("tokenizer", device, use_delta)
        frames = zeros(context, n, width)
        encoder = count_flops(lambda: tokenizer.encode(frames, frames, grid))
        parts.append(Component("shared", f"DeltaTok encoder ({context} frames)", "encoder", encoder))
        queries, keys_per_frame = 1, 1  # one delta token per frame
    else:
        queries, keys_per_frame = n, n  # every patch of every frame
    for known in range(context, context + steps):
        keys = known * keys_per_frame
        q, kv = zeros(1, queries, hidden), zeros(1, keys, width)
        count = count_flops(lambda: predictor(q, kv, zeros(1, queries, axes), zeros(1, keys, axes)))
        label = f"Predictor ({known}-frame context)"
        parts.append(Component("per sample", label, f"predictor_ctx{known}", count, predictor=True))
    if family == "deltaworld":
        decoder = count_flops(lambda: tokenizer.decode(zeros(1, 1, width), zeros(1, n, width), grid))
        # The decoder's cost does not depend on the step; Table B lists it once per step.
        for step in range(1, steps + 1):
            parts.append(Component("per sample", f"DeltaTok decoder (step {step})", "decoder_step", decoder))
    return tuple(parts)


def component_flops(
    model: str,
    resolution: int = 256,
    context: int = 4,
    num_samples: int = 20,
    steps: int = MID_STEPS,
    device: str = "meta",
) -> list[dict]:
    """Table B for one model: GFLOPs of each component on one square crop.

    Args:
        model: one of :data:`MODELS`.
        resolution: side of the square crop in pixels (256: the paper's ablation setting,
            Tables 2 and B; 512: the main setting).
        context: context frames C.
        num_samples: futures per clip S (ignored, i.e. 1, for deterministic models).
        steps: rollout steps K (3: the mid horizon).
        device: where the modules run; ``meta`` counts without computing.

    Returns:
        One dict per component, in Table B order, with ``model``, ``group`` (``shared`` or
        ``per sample``), ``component`` (Table B's label), ``key`` (the reported-numbers
        key), ``repeats`` (calls per crop: 1, or S per sample), ``gflops`` (one call),
        ``attention_gflops`` (its attention share) and ``paper_convention_gflops``.
    """
    _check(model, resolution, context, num_samples, steps)
    spec = MODELS[model]
    samples = num_samples if spec.sampled else 1
    if spec.family == PIXEL_FAMILY:  # whole frames at the model's own size: resolution does not apply
        from dfbench.flops_pixels import pixel_component_rows
        from dfbench.registry import get_model_spec

        return pixel_component_rows(model, get_model_spec(model), samples, steps, str(device))
    if spec.family == FORESIGHT_FAMILY:  # whole 448x896 frames, one pass per step
        from dfbench.flops_foresight import foresight_component_rows

        return foresight_component_rows(model, context, steps, str(device))
    rows = []
    for part in _components(spec.family, spec.use_delta, resolution, context, steps, str(device)):
        total, attention = part.count.total, part.count.attention
        rows.append(
            {
                "model": model,
                "group": part.group,
                "component": part.label,
                "key": part.key,
                "repeats": samples if part.group == "per sample" else 1,
                "gflops": total / 1e9,
                "attention_gflops": attention / 1e9,
                "paper_convention_gflops": (total + attention if part.predictor else total) / 1e9,
            }
        )
    return rows


def total_from_components(rows: list[dict], paper_convention: bool = False, crops: int = CROPS) -> float:
    """GFLOPs of a whole rollout: ``crops x sum(component x repeats)``.

    A row that carries its own ``crops`` (1 for pixel models: whole frames) overrides it.
    """
    column = "paper_convention_gflops" if paper_convention else "gflops"
    return sum(row.get("crops", crops) * row[column] * row["repeats"] for row in rows)


def total_gflops(
    model: str,
    resolution: int = 256,
    context: int = 4,
    num_samples: int = 20,
    steps: int = MID_STEPS,
    paper_convention: bool = False,
    crops: int = CROPS,
    device: str = "meta",
) -> float:
    """GFLOPs of one clip's rollout (Table 2's column): both square crops, all samples.

    Args:
        paper_convention: count the predictor's attention twice, as the paper's numbers do.
        crops: square crops per clip (2 in the protocol).
        Others: see :func:`component_flops`.
    """
    rows = component_flops(model, resolution, context, num_samples, steps, device)
    return total_from_components(rows, paper_convention, crops)


def reported_gflops() -> tuple[dict[tuple[str, str], float], dict[str, float]]:
    """The paper's GFLOPs: Table B as ``{(model, key): value}`` and Table 2 as ``{model: value}``.

    Table B is keyed by our model names and the ``key`` of :func:`component_flops`; both
    tables hold at 256 px, context 4, 20 samples and 3 steps only.
    """
    from dfbench.tables import reported_numbers

    frame = reported_numbers()
    frame = frame[(frame["source"] == "paper") & (frame["metric"] == "gflops")]
    by_reported_name = {spec.reported: name for name, spec in MODELS.items() if spec.reported}
    table_b, table_2 = {}, {}
    for row in frame.itertuples():
        if row.table == "B":
            reported_model, _, key = str(row.model).partition(":")
            table_b[(reported_model.replace("_", "-"), key)] = float(row.value)
        elif row.table == "2" and row.model in by_reported_name:
            table_2[by_reported_name[row.model]] = float(row.value)
    return table_b, table_2
