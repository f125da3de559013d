"""Cuts a self-consistent smaller fixture out of a reference fixture, to check the parity
tests read every size from the fixture they are given.

Only subsets whose expected values are slices of the reference's own tensors are offered:
fewer batch items (every model output is per item), fewer tokenizer horizons, fewer
validation horizons and fewer validation data sets (torchmetrics accumulate per
(data set, context, horizon), so dropping one leaves the others' values as they were).
A new sample count or grid would need the reference code to run again, so it is not offered.
The one recomputed value is the batch mean of log-cosh, from the reference's own tensors.

    python scripts/subset_reference_fixture.py ../shared/reference/tiny_fixture_a.pt /tmp/a-b1.pt --batch 1
    DFBENCH_FIXTURE_A=/tmp/a-b1.pt python -m pytest -q tests/models/test_fixture_parity.py tests/test_reference_parity.py
"""

from __future__ import annotations

import argparse
import copy
import math

import torch


def keep_items(fixture: dict, items: int) -> None:
    """The first ``items`` clips of the model-level inputs and outputs."""
    config, outputs = fixture["config"], fixture["outputs"]
    frames, samples = config["frames"]["T"], config["deltaworld"]["num_samples_eval"]
    config["frames"]["B"] = items
    first = slice(0, items)
    fixture["inputs"] = {k: v[first] for k, v in fixture["inputs"].items()}
    backbone = outputs["backbone"]
    for key in ("features", "black_frame_features"):
        backbone[key] = backbone[key][first]
    for key in ("pixel_values", "last_hidden_state_full"):  # [B*T, ...]
        backbone[key] = backbone[key][: items * frames]
    tok = outputs["deltatok"]
    for key in ("tokens_offline", "recon_teacher_forced", "encode_pair_frame0_to_frame1"):
        tok[key] = tok[key][first]
    for rollout in tok["rollouts"].values():
        rollout["preds"] = rollout["preds"][first]
    x = tok["recon_teacher_forced"] - backbone["features"]
    tok["logcosh_recon_vs_target_mean"] = (x + torch.nn.functional.softplus(-2.0 * x) - math.log(2.0)).mean()
    for name in ("deltaworld", "dinoworld", "dinoworld_bom"):
        section = outputs[name]
        for key, value in section.items():
            if key == "queries":  # [steps, B, S, 1, Dp]
                section[key] = value[:, first]
            elif key == "predictor_outputs":  # [steps, B*S, 1, D], batch-major rows
                section[key] = value[:, : items * samples]
            elif isinstance(value, torch.Tensor) and key not in ("w_coords", "h_coords") and value.ndim:
                section[key] = value[first]
    outputs["heads"] = {key: value[: items * frames] for key, value in outputs["heads"].items()}  # [B*T, ...]


def keep_tokenizer_horizons(fixture: dict, horizons: list[int]) -> None:
    fixture["config"]["deltatok_horizons"] = horizons
    rollouts = fixture["outputs"]["deltatok"]["rollouts"]
    fixture["outputs"]["deltatok"]["rollouts"] = {f"h{h}": rollouts[f"h{h}"] for h in horizons}


def keep_validation(fixture: dict, horizons: list[int] | None, datasets: list[str] | None) -> None:
    """Validation batches of ``datasets`` only, each with the runs of ``horizons`` only."""
    inputs, validation = fixture["outputs"]["validation_inputs"], fixture["outputs"]["validation_deltaworld"]
    pairs = [(i, b) for i, b in zip(inputs, validation["batches"]) if datasets is None or i["dataset"] in datasets]
    if horizons is not None:
        validation["eval_horizons"] = horizons
        fixture["config"]["validation"]["deltaworld_eval_horizons"] = horizons
        for _, batch in pairs:
            runs = [(r, c) for r, c in zip(batch["all_rollouts"], batch["captured"]) if r.shape[2] in horizons]
            batch["all_rollouts"], batch["captured"] = [r for r, _ in runs], [c for _, c in runs]
    fixture["outputs"]["validation_inputs"] = [i for i, _ in pairs]
    validation["batches"] = [b for _, b in pairs]
    kept = {i["dataset"] for i, _ in pairs}
    validation["metrics_final"] = {
        key: value
        for key, value in validation["metrics_final"].items()
        if key.split("/")[0] in kept and (horizons is None or int(key.split("_h")[1].split("_")[0]) in horizons)
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source")
    parser.add_argument("target")
    parser.add_argument("--batch", type=int, help="keep the first N clips of the model outputs")
    parser.add_argument("--tokenizer-horizons", help="comma-separated DeltaTok rollout horizons to keep")
    parser.add_argument("--eval-horizons", help="comma-separated validation horizons to keep")
    parser.add_argument("--datasets", help="comma-separated validation data sets to keep")
    args = parser.parse_args()
    fixture = copy.deepcopy(torch.load(args.source, weights_only=True))
    numbers = lambda text: [int(v) for v in text.split(",")]  # noqa: E731
    if args.batch:
        keep_items(fixture, args.batch)
    if args.tokenizer_horizons:
        keep_tokenizer_horizons(fixture, numbers(args.tokenizer_horizons))
    if args.eval_horizons or args.datasets:
        keep_validation(
            fixture,
            numbers(args.eval_horizons) if args.eval_horizons else None,
            args.datasets.split(",") if args.datasets else None,
        )
    fixture["config"]["name"] = f"{fixture['config']['name']}-subset"
    torch.save(fixture, args.target)
    print(f"wrote {args.target}")


if __name__ == "__main__":
    main()
