"""The demo figure: a clip's context, its true future, and each model's forecast.

Forecasts are shown through the segmentation head (argmax classes) on the first
square crop, at the mid horizon; stochastic models show their best sample. They come
from the evaluator's own forecast step, so the figure shows what the table scores.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from dfbench.config import load_protocol  # noqa: E402
from dfbench.evaluate import Evaluator, encode_clip  # noqa: E402
from dfbench.features import load_feature_space  # noqa: E402
from dfbench.heads.catalog import load_heads  # noqa: E402
from dfbench.protocol import windows  # noqa: E402
from dfbench.registry import get_dataset_class, get_model_class  # noqa: E402

# Which of the evaluator's statistics a model's panel shows: its best sample, else its only one.
SHOWN_STATS = ("best", "single")


@torch.no_grad()
def demo_panels(
    models: list[str], num_samples: int = 20, device: str = "cpu", clip_index: int = 0
) -> tuple[list[tuple[str, list]], int, int]:
    """The figure's rows (label, one image or None per frame), the context length and the class count.

    Rows: the first crop's frames, its true segmentation, then each model's forecast
    classes at the mid horizon, as the evaluator forecasts and scores them.
    """
    protocol = load_protocol()
    space = load_feature_space("tiny", device=device)
    dataset_cls = get_dataset_class("synthetic")
    dataset = dataset_cls(frame_size=space.frame_size)
    num_classes = dataset_cls.tasks["seg"]
    heads = {"seg": load_heads("tiny", space.dim, "synthetic", {"seg": num_classes})["seg"].to(device)}
    clip = dataset.load(dataset.sample_ids()[clip_index])
    encoded = encode_clip(clip, space, torch.device(device))
    (window,) = windows(protocol.clip_length, protocol.context_length, {"mid": protocol.horizons["mid"]})
    frames = list(window.context) + list(window.targets)
    half = encoded.halves["seg"][0]

    rows = [
        ("frames", [encoded.crops[0, t].permute(1, 2, 0).numpy() for t in frames]),
        ("truth", [half[t].numpy() for t in frames]),
    ]
    for name in models:
        model = get_model_class(name)(space).to(device)
        evaluator = Evaluator(model, space, heads, protocol, num_samples, [window.horizon_name], device=torch.device(device))
        scored = evaluator.forecast([encoded], window)
        chosen = next(scored[stat] for stat in SHOWN_STATS if stat in scored)
        outputs = evaluator.aligned_outputs([encoded], window, "seg", chosen)[0]  # the first crop
        rows.append((name, [None] * len(window.context) + list(outputs.argmax(1).cpu().numpy())))
    return rows, len(window.context), num_classes


def save_demo_figure(
    path: Path, models: list[str], num_samples: int = 20, device: str = "cpu", clip_index: int = 0
) -> Path:
    """Writes the PNG and returns its path."""
    rows, context_length, num_classes = demo_panels(models, num_samples, device, clip_index)
    columns = len(rows[0][1])
    fig, axes = plt.subplots(len(rows), columns, figsize=(1.6 * columns, 1.6 * len(rows)), squeeze=False)
    for r, (label, images) in enumerate(rows):
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
                ax.set_title("context" if c < context_length else f"+{c - context_length + 1}", fontsize=8)
        axes[r, 0 if images[0] is not None else context_length].set_ylabel(label, fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
    return path
