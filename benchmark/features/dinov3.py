"""The frozen DINOv3 ViT backbone through Hugging Face transformers.

The paper's feature space is DINOv3 ViT-B/16 (``facebook/dinov3-vitb16-pretrain-lvd1689m``),
fed with unresized frames and read out as the final-norm patch tokens with the CLS and
register tokens dropped (ARCHITECTURE_FACTS.md, section 1). Every feature space of that
architecture, the embedded ``tiny`` one included, goes through :class:`Dinov3FeatureSpace`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModel, DINOv3ViTConfig, PreTrainedModel
from transformers.image_processing_base import ImageProcessingMixin
from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

from dfbench.errors import DfbenchError
from dfbench.features.base import FeatureSpace
from dfbench.models.vit_inference import use_inference_layers

# The files a DINOv3 model folder needs; everything else on the hub page is prose.
WEIGHT_FILES = ("config.json", "preprocessor_config.json", "*.safetensors")

DINOV3_LICENSE = "DINOv3 License (gated on the Hugging Face hub: accept it on the model page first)"


@dataclass(frozen=True)
class Dinov3Weights:
    """One released DINOv3 backbone: where its weights are, how to feed it, where it comes from.

    Attributes:
        name: the feature-space name in the registry.
        hub_id: Hugging Face hub repository.
        revision: hub revision to read (a branch, tag or commit hash).
        patch_size: pixels per patch side.
        dim: feature width.
        image_mean: per-channel mean of the preprocessing (RGB).
        image_std: per-channel std of the preprocessing (RGB).
        frame_size: the protocol's short side in pixels.
        license: terms the weights are released under.
        paper: where the model is described.
    """

    name: str
    hub_id: str
    revision: str = "main"
    patch_size: int = 16
    dim: int = 768
    image_mean: tuple[float, float, float] = tuple(IMAGENET_DEFAULT_MEAN)
    image_std: tuple[float, float, float] = tuple(IMAGENET_DEFAULT_STD)
    frame_size: int = 512
    license: str = DINOV3_LICENSE
    paper: str = "Simeoni et al., DINOv3, arXiv:2508.10104 (2025)"

    @property
    def download_command(self) -> str:
        return f"hf download {self.hub_id}"


DINOV3_WEIGHTS: dict[str, Dinov3Weights] = {
    "dinov3-vits16": Dinov3Weights("dinov3-vits16", "facebook/dinov3-vits16-pretrain-lvd1689m", dim=384),
    "dinov3-vitb16": Dinov3Weights("dinov3-vitb16", "facebook/dinov3-vitb16-pretrain-lvd1689m", dim=768),
    "dinov3-vitl16": Dinov3Weights("dinov3-vitl16", "facebook/dinov3-vitl16-pretrain-lvd1689m", dim=1024),
}


class Dinov3FeatureSpace(FeatureSpace):
    """A frozen DINOv3ViTModel plus the DINOv3 image processor's two steps.

    The processor is read from the model folder (``preprocessor_config.json``) but its two
    steps are applied here rather than by calling it: the transformers DINOv3 processor
    needs torchvision, and per-batch calls go through PIL-style per-image bookkeeping. The
    steps are reproduced bit for bit (checked against the processor's own output in the
    tests): ``float32(u8) * rescale_factor`` in fp32, then ``(x - mean) / std`` as a
    separate step, never fused into one affine map (fusing changes the last bit).

    Args:
        model: a DINOv3ViTModel; it is put in eval mode and frozen.
        image_mean: per-channel preprocessing mean.
        image_std: per-channel preprocessing std.
        rescale_factor: the processor's uint8 scale (1/255).
        name: registry name.
        frame_size: the protocol's short side for this feature space.
        do_rescale: whether the processor rescales.
        do_normalize: whether the processor normalises.
        dtype: ``None`` / ``torch.float32`` for fp32, or ``torch.bfloat16`` for bf16 autocast
            of the forward pass on CUDA (features are returned in fp32 either way).
    """

    def __init__(
        self,
        model: PreTrainedModel,
        image_mean: tuple[float, ...],
        image_std: tuple[float, ...],
        rescale_factor: float,
        *,
        name: str,
        frame_size: int,
        do_rescale: bool = True,
        do_normalize: bool = True,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if dtype not in (None, torch.float32, torch.bfloat16):
            raise DfbenchError(f"feature space dtype {dtype} is not supported; use float32 (default) or bfloat16.")
        config = model.config
        # The library's layers, with their evaluation steps in place: the same features.
        self.model = use_inference_layers(model).eval().requires_grad_(False)
        self.name = name
        self.patch_size = int(config.patch_size)
        self.dim = int(config.hidden_size)
        self.noise_std = float(config.initializer_range)
        self.weights_sha256: str | None = None  # set when loaded from a folder (run identity, feature cache)
        self.frame_size = int(frame_size)
        self.num_prefix_tokens = 1 + int(config.num_register_tokens)
        self.rescale_factor = float(rescale_factor)
        self.do_rescale = bool(do_rescale)
        self.do_normalize = bool(do_normalize)
        self.dtype = dtype
        self.mean_std = (tuple(map(float, image_mean)), tuple(map(float, image_std)))
        self.register_buffer("image_mean", torch.tensor(image_mean, dtype=torch.float32).view(3, 1, 1), persistent=False)
        self.register_buffer("image_std", torch.tensor(image_std, dtype=torch.float32).view(3, 1, 1), persistent=False)
        self.eval()

    def train(self, mode: bool = True) -> Dinov3FeatureSpace:
        # The backbone is frozen and always in eval mode: train mode would switch on the
        # RoPE coordinate augmentation (ARCHITECTURE_FACTS.md, section 1).
        return super().train(False)

    def preprocess(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 frames [B, 3, H, W] -> fp32 pixel values, as the DINOv3 processor gives them."""
        x = frames.to(torch.float32)
        if self.do_rescale:
            x = x * self.rescale_factor
        if self.do_normalize:
            x = (x - self.image_mean) / self.image_std
        return x

    def _check(self, frames: torch.Tensor) -> None:
        if frames.dtype != torch.uint8:
            raise DfbenchError(f"feature space '{self.name}' takes uint8 frames, got {frames.dtype}; pass raw RGB frames.")
        if frames.dim() < 3 or frames.shape[-3] != 3:
            raise DfbenchError(f"feature space '{self.name}' takes frames [..., 3, H, W], got {tuple(frames.shape)}.")
        height, width = frames.shape[-2:]
        if height % self.patch_size or width % self.patch_size:
            raise DfbenchError(
                f"frame size {height}x{width} is not a multiple of the patch size {self.patch_size} of "
                f"'{self.name}'; crop or resize the frames first."
            )

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype == torch.bfloat16 and self.image_mean.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def hidden_states(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 frames [B, 3, H, W] -> every final-norm token [B, 1 + R + N, D] (CLS, registers, patches)."""
        self._check(frames)
        with torch.no_grad(), self._autocast():
            pixel_values = self.preprocess(frames.to(self.image_mean.device))
            return self.model(pixel_values=pixel_values).last_hidden_state.float()

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 frames [..., 3, H, W] -> patch features [..., N, D] in row-major raster order."""
        self._check(frames)
        lead = frames.shape[:-3]
        tokens = self.hidden_states(frames.reshape(-1, *frames.shape[-3:]))
        patches = tokens[:, self.num_prefix_tokens :]
        return patches.reshape(*lead, *patches.shape[-2:])

    def save_pretrained(self, folder: str | Path) -> None:
        """Write a Hugging Face model folder: config, safetensors weights and processor config.

        The processor config is the DINOv3 one with this space's mean, std and scale, so the
        folder also loads with ``AutoImageProcessor`` where torchvision is installed.
        """
        folder = Path(folder)
        self.model.save_pretrained(folder, safe_serialization=True)
        processor = {
            "image_processor_type": "DINOv3ViTImageProcessorFast",
            "do_resize": True,
            "size": {"height": 224, "width": 224},
            "resample": 2,
            "do_center_crop": False,
            "do_rescale": self.do_rescale,
            "rescale_factor": self.rescale_factor,
            "do_normalize": self.do_normalize,
            "image_mean": list(self.mean_std[0]),
            "image_std": list(self.mean_std[1]),
            "do_convert_rgb": True,
        }
        (folder / "preprocessor_config.json").write_text(json.dumps(processor, indent=2) + "\n")

    @classmethod
    def from_pretrained(
        cls,
        folder: str | Path,
        *,
        name: str,
        frame_size: int,
        device: str | torch.device = "cpu",
        dtype: torch.dtype | None = None,
    ) -> Dinov3FeatureSpace:
        """Build from a local Hugging Face model folder (config, safetensors, preprocessor config).

        Args:
            folder: directory with ``config.json``, ``model.safetensors`` and
                ``preprocessor_config.json``.
            name: registry name.
            frame_size: the protocol's short side.
            device: where the model runs.
            dtype: see the class docstring.
        """
        folder = Path(folder)
        if not folder.is_dir():
            raise DfbenchError(f"feature-space path '{folder}' is not a directory; pass a model folder with config.json and model.safetensors.")
        try:
            model = AutoModel.from_pretrained(folder, attn_implementation="sdpa", dtype=torch.float32, use_safetensors=True)
            processor, _ = ImageProcessingMixin.get_image_processor_dict(str(folder))
        except (OSError, ValueError) as error:
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise DfbenchError(f"cannot load a DINOv3 model from '{folder}' ({first_line}); pass a folder written by save_pretrained.") from error
        if model.config.model_type != "dinov3_vit":
            raise DfbenchError(f"'{folder}' holds a '{model.config.model_type}' model, not dinov3_vit; pass a DINOv3 ViT folder.")
        space = cls._with_processor(model, processor, name=name, frame_size=frame_size, dtype=dtype).to(device)
        space.weights_sha256 = weights_digest(folder)
        return space

    @classmethod
    def from_config_and_state_dict(
        cls,
        config_dict: Mapping[str, Any],
        state_dict: Mapping[str, torch.Tensor],
        *,
        frame_size: int,
        name: str,
        device: str | torch.device = "cpu",
        dtype: torch.dtype | None = None,
    ) -> Dinov3FeatureSpace:
        """Build from plain config values and a state dict in either key convention.

        Args:
            config_dict: either DINOv3ViTConfig values, or a dict with ``backbone_config``
                (those values) and optionally ``processor`` (``rescale_factor``,
                ``image_mean``, ``image_std``, ...), as the reference fixtures store it.
            state_dict: DINOv3ViTModel weights named ``layer.{i}.*`` (hub) or
                ``model.layer.{i}.*`` (transformers >= 5.x); loaded strictly.
            frame_size: the protocol's short side.
            name: registry name.
            device: where the model runs.
            dtype: see the class docstring.
        """
        backbone = dict(config_dict.get("backbone_config", config_dict))
        processor = dict(config_dict.get("processor", {}))
        attn = backbone.pop("attn_implementation", None) or "sdpa"
        config = DINOv3ViTConfig(**backbone)
        model = AutoModel.from_config(config, attn_implementation=attn)
        model.load_state_dict(to_model_keys(model, state_dict), strict=True)
        return cls._with_processor(model, processor, name=name, frame_size=frame_size, dtype=dtype).to(device)

    @classmethod
    def _with_processor(
        cls, model: PreTrainedModel, processor: Mapping[str, Any], *, name: str, frame_size: int, dtype: torch.dtype | None
    ) -> Dinov3FeatureSpace:
        return cls(
            model,
            tuple(processor.get("image_mean", IMAGENET_DEFAULT_MEAN)),
            tuple(processor.get("image_std", IMAGENET_DEFAULT_STD)),
            float(processor.get("rescale_factor", 1 / 255)),
            name=name,
            frame_size=frame_size,
            do_rescale=processor.get("do_rescale", True),
            do_normalize=processor.get("do_normalize", True),
            dtype=dtype,
        )


def weights_digest(folder: str | Path) -> str:
    """sha256 of a model folder's weights (of each safetensors file, combined if several).

    Part of every run identity and feature-cache key: other weights at the same path never
    reuse results or features computed with the old ones.
    """
    from dfbench.checkpoints import sha256_file

    files = sorted(Path(folder).glob("*.safetensors"))
    digests = [sha256_file(f) for f in files]
    if len(digests) == 1:
        return digests[0]
    text = "".join(f"{f.name}:{d}\n" for f, d in zip(files, digests))
    return hashlib.sha256(text.encode()).hexdigest()


def to_model_keys(model: PreTrainedModel, state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename DINOv3 checkpoint keys to the names ``model`` uses.

    The hub checkpoints (and transformers 4.x) name the blocks ``layer.{i}.*``; transformers
    5.x nests them as ``model.layer.{i}.*``. The only difference is that ``model.`` prefix, so
    a key is matched against the installed model's names with and without it. This is done
    by hand because transformers' own renaming rule for dinov3_vit (a regex on ``layer.``)
    only accepts hub names: fed ``model.layer.0.layer_scale1.*`` it rewrites ``layer_scale1``.
    """
    model_keys = set(model.state_dict())
    renamed = {}
    for key, value in state_dict.items():
        if key not in model_keys:
            if f"model.{key}" in model_keys:
                key = f"model.{key}"
            elif key.startswith("model.") and key[len("model.") :] in model_keys:
                key = key[len("model.") :]
        renamed[key] = value
    return renamed


def resolve_weights(weights: Dinov3Weights) -> Path:
    """The local folder of ``weights``: the Hugging Face cache, downloading when online and allowed.

    Raises:
        DfbenchError: the weights are neither cached nor downloadable (offline, gated,
            license not accepted); the message gives the command that fetches them.
    """
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError

    from dfbench.hub import hub_offline

    fix = (
        f"accept the DINOv3 license on https://huggingface.co/{weights.hub_id}, then run "
        f"'{weights.download_command}' on a machine with internet, or pass --feature-space-path DIR"
    )
    try:
        # Offline, only the cache is read: no retries against an unreachable hub.
        folder = snapshot_download(weights.hub_id, revision=weights.revision, allow_patterns=list(WEIGHT_FILES),
                                   local_files_only=hub_offline())
    except GatedRepoError as error:
        raise DfbenchError(f"weights of '{weights.name}' ({weights.hub_id}) are gated and this account has no access: {fix}.") from error
    except (LocalEntryNotFoundError, RepositoryNotFoundError, HfHubHTTPError, OSError) as error:
        raise DfbenchError(f"weights of '{weights.name}' ({weights.hub_id}) are not in the Hugging Face cache and cannot be downloaded here: {fix}.") from error
    if not any(Path(folder).glob("*.safetensors")):
        raise DfbenchError(f"the cached copy of {weights.hub_id} has no safetensors weights: {fix}.")
    return Path(folder)


def load_dinov3(
    name: str, path: str | None = None, device: str = "cpu", dtype: torch.dtype | None = None
) -> Dinov3FeatureSpace:
    """Load a released DINOv3 feature space from ``path`` or the Hugging Face cache.

    Args:
        name: one of :data:`DINOV3_WEIGHTS`.
        path: a local model folder (``--feature-space-path``); ``None`` reads the hub cache.
        device: where the model runs.
        dtype: ``torch.bfloat16`` for bf16 autocast on CUDA; fp32 by default.
    """
    weights = DINOV3_WEIGHTS[name]
    folder = Path(path) if path is not None else resolve_weights(weights)
    space = Dinov3FeatureSpace.from_pretrained(folder, name=name, frame_size=weights.frame_size, device=device, dtype=dtype)
    if (space.patch_size, space.dim) != (weights.patch_size, weights.dim):
        raise DfbenchError(
            f"'{folder}' holds a DINOv3 with patch {space.patch_size} and width {space.dim}, but '{name}' needs patch "
            f"{weights.patch_size} and width {weights.dim}; pass the folder of {weights.hub_id}."
        )
    return space


def load_dinov3_vits16(path: str | None = None, device: str = "cpu", dtype: torch.dtype | None = None) -> Dinov3FeatureSpace:
    """DINOv3 ViT-S/16 (384 wide)."""
    return load_dinov3("dinov3-vits16", path, device, dtype)


def load_dinov3_vitb16(path: str | None = None, device: str = "cpu", dtype: torch.dtype | None = None) -> Dinov3FeatureSpace:
    """DINOv3 ViT-B/16 (768 wide), the paper's feature space."""
    return load_dinov3("dinov3-vitb16", path, device, dtype)


def load_dinov3_vitl16(path: str | None = None, device: str = "cpu", dtype: torch.dtype | None = None) -> Dinov3FeatureSpace:
    """DINOv3 ViT-L/16 (1024 wide)."""
    return load_dinov3("dinov3-vitl16", path, device, dtype)
