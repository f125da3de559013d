"""The demo figure: a clip's context, its true future, and each model's forecast.

Forecasts are shown through the segmentation head (argmax classes) on the first
square crop, at the mid horizon; stochastic models show their best sample.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from dfbench.adapters.base import Context  # noqa: E402
from dfbench.config import load_protocol  # noqa: E402
from dfbench.evaluate import encode_clip, row_generator  # noqa: E402
from dfbench.features import load_feature_space  # noqa: E402
from dfbench.heads.catalog import load_heads  # noqa: E402
from dfbench.heads.linear import features_to_map  # noqa: E402
from dfbench.protocol import align_to_labels, windows  # noqa: E402
from dfbench.registry import get_dataset_class, get_model_class  # noqa: E402
from dfbench.scoring import score_rollouts  # noqa: E402


@torch.no_grad()
def save_demo_figure(
    path: Path, models: list[str], num_samples: int = 20, device: str = "cpu", clip_index: int = 0
) -> Path:
    """Writes the PNG and returns its path."""
    protocol = load_protocol()
    space = load_feature_space("tiny", device=device)
    dataset_cls = get_dataset_class("synthetic")
    dataset = dataset_cls(frame_size=space.frame_size)
    heads = load_heads("tiny", space.dim, "synthetic", {"seg": dataset_cls.tasks["seg"]})
    head = heads["seg"].to(device)
    num_classes = dataset_cls.tasks["seg"]
    clip = dataset.load(dataset.sample_ids()[clip_index])

    encoded = encode_clip(clip, space, torch.device(device))
    (window,) = windows(protocol.clip_length, protocol.context_length, {"mid": protocol.horizons["mid"]})
    ctx, tgt = list(window.context), list(window.targets)
    half = encoded.halves["seg"][0]
    frame_hw = tuple(clip.frames.shape[-2:])

    rows = [("frames", [encoded.crops[0, t].permute(1, 2, 0).numpy() for t in ctx + tgt], None)]
    rows.append(("truth", [half[t].numpy() for t in ctx + tgt], None))
    for name in models:
        model = get_model_class(name)(space).to(device)
        samples = num_samples if model.stochastic else 1
        context = Context(
            frames=encoded.crops[:1, ctx].to(device),
            timestamps=clip.timestamps[None, ctx].to(device),
            features=encoded.features[:1, ctx],
            grid=encoded.grid,
            generators=[row_generator(0, clip.sample_id, 0, window.horizon_name)],
            future_features=encoded.features[:1, tgt] if model.oracle else None,
        )
        preds = model.predict(context, clip.timestamps[None, tgt].to(device), samples).features
        chosen = next(iter(score_rollouts(preds.float(), encoded.features[:1, tgt], model.stochastic).values()))
        logits = head(features_to_map(chosen[0], encoded.grid))
        maps = [align_to_labels(logits[k : k + 1], 0, tuple(half.shape[-2:]), *frame_hw)[0].argmax(0).cpu().numpy()
                for k in range(len(tgt))]
        rows.append((name, [None] * len(ctx) + maps, None))

    columns = len(ctx) + len(tgt)
    fig, axes = plt.subplots(len(rows), columns, figsize=(1.6 * columns, 1.6 * len(rows)), squeeze=False)
    for r, (label, images, _) in enumerate(rows):
        for c in range(columns):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            image = images[c]
            if image is None:
                ax.axis("off")
                continue
            if image.ndim == 3:
                ax.imshow(image)
            else:
                masked = image.astype(float)
                masked[image == 255] = float("nan")
                ax.imshow(masked, cmap="tab10", vmin=0, vmax=max(9, num_classes - 1), interpolation="nearest")
            if r == 0:
                ax.set_title("context" if c < len(ctx) else f"+{c - len(ctx) + 1}", fontsize=8)
        axes[r, 0 if images[0] is not None else len(ctx)].set_ylabel(label, fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
    return path
