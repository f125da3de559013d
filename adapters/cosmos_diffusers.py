"""Cosmos video-to-world pipelines through diffusers, as pixel-space world models.

One family class serves every variant (:mod:`dfbench.adapters.variants`); the spec's
``options`` name the diffusers pipeline, the hub repository and its licence page.

Frame counts: these pipelines condition on ``(n - 1) // t + 1`` latent frames of a
VAE with temporal factor ``t`` (4 for the Wan VAE of Cosmos-Predict2 and 2.5, 8 for
Cosmos-1's tokenizer). Four context frames would give one latent frame, i.e. only the
first frame, so the specs feed ``t + 1`` frames (5 or 9, see ``spread_context``) and
all four protocol frames condition the generation. The video asked for is that many
frames plus the future, rounded up to ``1 + t * k``.

The prompt is fixed; its embeddings are computed once per model, cached on disk and
the text encoder is never kept in memory. NVIDIA's Open Model License requires its
guardrail: the official ``cosmos_guardrail`` checker is used when installed, and the
adapter refuses to run without it unless ``accept_no_guardrail=True`` (``--model-arg
accept_no_guardrail=true``) says the user takes responsibility.
"""

from __future__ import annotations

import inspect
import math
import os
from pathlib import Path
from typing import Any, ClassVar

import torch

from dfbench.adapters.pixel import PixelContext, PixelWorldModel, sample_generators, target_frame_indices
from dfbench.adapters.spec import ModelSpec
from dfbench.errors import DfbenchError

DIFFUSERS_MISSING = 'the Cosmos models need diffusers; run: pip install "dfbench[cosmos]"'
DEFAULT_PROMPT = (
    "A continuous, realistic video recorded by a camera moving through a real-world scene; "
    "the scene and its objects keep moving naturally."
)
PROMPT_FILE = "prompt_embeds.safetensors"


def import_diffusers():
    """diffusers, or one line saying how to install it."""
    try:
        import diffusers
    except ImportError as error:
        raise DfbenchError(DIFFUSERS_MISSING) from error
    return diffusers


def cache_root() -> Path:
    return Path(os.environ.get("DFBENCH_CACHE", Path.home() / ".cache" / "dfbench"))


class PassThroughChecker(torch.nn.Module):
    """Stands where the guardrail goes for weights that do not require it (or when the user accepted that)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("_where", torch.zeros(1), persistent=False)

    def check_text_safety(self, prompt: str) -> bool:
        return True

    def check_video_safety(self, frames):
        return frames

    @property
    def device(self) -> torch.device:
        return self._where.device

    @property
    def dtype(self) -> torch.dtype:
        return self._where.dtype


def guardrail(spec: ModelSpec, checker: Any, accept_no_guardrail: bool) -> Any:
    """The safety checker the pipeline runs: given, official, or a pass-through the user accepted."""
    if checker is not None:
        return checker
    if not spec.options.get("guardrail", False):
        return PassThroughChecker()
    try:
        from cosmos_guardrail import CosmosSafetyChecker
    except ImportError:
        if accept_no_guardrail:
            return PassThroughChecker()
        licence = spec.options.get("licence_url", "the NVIDIA Open Model License")
        raise DfbenchError(
            f"model '{spec.name}' requires NVIDIA's guardrail under {licence}: pip install cosmos_guardrail, "
            "or pass --model-arg accept_no_guardrail=true to accept responsibility."
        ) from None
    return CosmosSafetyChecker()


def hub_snapshot(spec: ModelSpec) -> str:
    """The local folder of the spec's hub repository, or one line on how to download it."""
    from huggingface_hub import snapshot_download

    repo, revision = spec.options["hub_id"], spec.options.get("revision")
    try:
        return snapshot_download(repo, revision=revision, local_files_only=True)
    except Exception as error:  # noqa: BLE001 - every miss means: not downloaded yet
        command = f"hf download {repo}" + (f" --revision {revision}" if revision else "")
        licence = spec.options.get("licence_url", "the model card")
        raise DfbenchError(
            f"weights of '{spec.name}' are not in the Hugging Face cache; accept the licence at {licence}, "
            f"then run: {command}"
        ) from error


class DiffusersVideoWorld(PixelWorldModel):
    """A diffusers video-to-world pipeline generating futures from whole context frames.

    Keyword options (``--model-arg``): ``accept_no_guardrail``, ``num_inference_steps``,
    ``guidance_scale``, ``sample_batch`` (videos per pipeline call; default all samples of
    a clip). ``pipeline``, ``prompt_embeds`` and ``safety_checker`` take ready objects
    (tests, notebooks).
    """

    spec: ClassVar[ModelSpec]
    stochastic = True

    def __init__(
        self,
        feature_space,
        checkpoint: str | None = None,
        accept_no_guardrail: bool = False,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        sample_batch: int | None = None,
        pipeline: Any = None,
        prompt_embeds: tuple[torch.Tensor, torch.Tensor | None] | None = None,
        safety_checker: Any = None,
        **options,
    ) -> None:
        super().__init__(feature_space, checkpoint)
        if not isinstance(getattr(type(self), "spec", None), ModelSpec):
            raise DfbenchError(f"{type(self).__name__} needs a model spec; build it with dfbench.registry.get_model_class(NAME).")
        settings = self.spec.options
        self.diffusers = import_diffusers()
        self.steps = int(num_inference_steps or settings.get("num_inference_steps", 35))
        self.guidance = float(settings.get("guidance_scale", 7.0) if guidance_scale is None else guidance_scale)
        self.sample_batch = int(sample_batch) if sample_batch else None
        self.checker = guardrail(self.spec, safety_checker, _flag(accept_no_guardrail))
        self.device = torch.device("cpu")
        self._pipe = pipeline
        self._embeds = prompt_embeds
        # Fail now, not at the first clip: where the weights are, if they are not handed over.
        self._source = None if pipeline is not None else self._weights_folder()
        if pipeline is not None:
            pipeline.register_modules(safety_checker=self.checker)

    def _weights_folder(self) -> str:
        if self.checkpoint is not None:
            path = Path(self.checkpoint)
            if not (path.is_dir() or (path.is_file() and path.suffix == ".safetensors")):
                raise DfbenchError(
                    f"checkpoint '{self.checkpoint}' is neither a diffusers pipeline folder nor a cosmos-tiny file; pass one."
                )
            return self.checkpoint
        shipped = self.spec.weight(self.feature_space.name, "pipeline") or next(
            (parts["pipeline"] for parts in self.spec.weights.values() if "pipeline" in parts), None
        )
        if shipped is not None and shipped.shipped is not None:
            return shipped.location
        return hub_snapshot(self.spec)

    def to(self, device: torch.device | str) -> DiffusersVideoWorld:
        self.device = torch.device(device)
        if self._pipe is not None:
            self._pipe.to(self.device)
        return self

    def checkpoint_files(self) -> dict[str, str]:
        return {"pipeline": str(self._source)} if self._source else {}

    # -- loading -------------------------------------------------------------------------

    def pipeline(self):
        """The loaded pipeline, without its text encoder (bf16 on CUDA)."""
        if self._pipe is None:
            cls = getattr(self.diffusers, self.spec.options["pipeline"], None)
            if cls is None:
                raise DfbenchError(
                    f"this diffusers ({self.diffusers.__version__}) has no {self.spec.options['pipeline']}; "
                    'run: pip install -U "dfbench[cosmos]"'
                )
            if str(self._source).endswith(".safetensors"):  # dfbench's own tiny pipeline in one file
                from dfbench.adapters.cosmos_tiny import load_tiny

                pipe, prompt = load_tiny(self._source, self.checker)
                self._pipe = pipe.to(self.device)
                self._embeds = self._embeds or (prompt, None)
                return self._pipe
            self._embeds = self._embeds or self._cached_embeds()
            extra = {"text_encoder": None, "tokenizer": None} if self._embeds else {}
            if self.device.type == "cuda":
                extra["torch_dtype"] = torch.bfloat16  # on the CPU the stored fp32 weights load as they are
            pipe = cls.from_pretrained(self._source, safety_checker=self.checker, **extra)
            _check_torchvision(pipe)
            pipe.set_progress_bar_config(disable=True)
            self._pipe = pipe.to(self.device)
        if self._embeds is None:
            self._embeds = self._cached_embeds() or self._encode_prompt()
        return self._pipe

    def _cache_file(self) -> Path:
        return cache_root() / "prompts" / f"{self.spec.name}.safetensors"

    def _cached_embeds(self):
        file = Path(self._source or "") / PROMPT_FILE
        file = file if file.is_file() else self._cache_file()
        if not file.is_file():
            return None
        from safetensors.torch import load_file

        stored = load_file(str(file))
        if stored.get("prompt") is None:
            return None
        return stored["prompt"], stored.get("negative")

    def _encode_prompt(self):
        """Embeds the fixed prompt once, caches it, and frees the text encoder."""
        pipe = self._pipe
        if getattr(pipe, "text_encoder", None) is None:
            raise DfbenchError(f"model '{self.spec.name}' has no prompt embeddings and no text encoder; re-download its weights.")
        with torch.no_grad():
            positive, negative = pipe.encode_prompt(
                prompt=self.spec.options.get("prompt", DEFAULT_PROMPT),
                negative_prompt=self.spec.options.get("negative_prompt"),
                do_classifier_free_guidance=self.guidance > 1.0,
                device=self.device,
            )
        embeds = {"prompt": positive.float().cpu().contiguous()}
        if negative is not None:
            embeds["negative"] = negative.float().cpu().contiguous()
        from safetensors.torch import save_file

        self._cache_file().parent.mkdir(parents=True, exist_ok=True)
        save_file(embeds, str(self._cache_file()))
        pipe.register_modules(text_encoder=None, tokenizer=None)
        return embeds["prompt"], embeds.get("negative")

    # -- generation ----------------------------------------------------------------------

    def generate(self, context: PixelContext, target_timestamps: torch.Tensor, num_samples: int) -> torch.Tensor:
        pipe = self.pipeline()
        stride = self.input_format().stride
        wanted = target_frame_indices(context, target_timestamps, stride)
        batch, cond, _, height, width = context.frames.shape
        scale = pipe.vae_scale_factor_temporal
        total = 1 + scale * math.ceil((cond + max(wanted)) / scale)
        latent_shape = (pipe.transformer.config.in_channels - 1, (total - 1) // scale + 1,
                        height // pipe.vae_scale_factor_spatial, width // pipe.vae_scale_factor_spatial)
        fps = stride / max(context.protocol_step, 1e-6)
        chunk = self.sample_batch or num_samples
        clips = []
        for b in range(batch):
            # One seed for the context's VAE posterior sample (the same for every call on this clip,
            # so splitting the samples does not change them), then one noise tensor per sample.
            seeds = [g.initial_seed() for g in sample_generators(context.generators[b], num_samples + 1)]
            noise = torch.stack([torch.randn(latent_shape, generator=torch.Generator().manual_seed(s)) for s in seeds[1:]])
            video = context.frames[b : b + 1].float() / 255  # encoded once per call, shared by its samples
            clips.append(torch.cat([self._call(pipe, video, noise[i : i + chunk], seeds[0], total, fps)
                                    for i in range(0, num_samples, chunk)]))
        frames = torch.stack(clips)
        if tuple(frames.shape) != (batch, num_samples, total, 3, height, width):
            raise DfbenchError(
                f"pipeline of '{self.spec.name}' returned frames {tuple(frames.shape[1:])} per clip, expected "
                f"{(num_samples, total, 3, height, width)}; check its diffusers version and the spec's input size."
            )
        picked = frames[:, :, [cond + i for i in wanted]]
        return (picked.float() * 255).round().clamp(0, 255).to(torch.uint8)

    def _call(self, pipe, video: torch.Tensor, noise: torch.Tensor, posterior_seed: int, total: int, fps: float) -> torch.Tensor:
        """All samples of one clip in one pipeline call: its video once, ``noise`` [S, C, T, h, w] as the latents."""
        positive, negative = self._embeds
        dtype = pipe.transformer.dtype
        kwargs = {
            "video": video.to(self.device),
            "prompt_embeds": positive.to(self.device, dtype),
            "height": video.shape[-2],
            "width": video.shape[-1],
            "num_frames": total,
            "num_inference_steps": self.steps,
            "guidance_scale": self.guidance,
            "num_videos_per_prompt": len(noise),
            "latents": noise.to(self.device),
            "generator": torch.Generator().manual_seed(posterior_seed),
            "output_type": "pt",
            "return_dict": False,
        }
        if negative is not None and self.guidance > 1.0:
            kwargs["negative_prompt_embeds"] = negative.to(self.device, dtype)
        accepted = inspect.signature(pipe.__call__).parameters
        if "fps" in accepted:
            kwargs["fps"] = max(1, round(fps))
        if "num_latent_conditional_frames" in accepted:
            kwargs["num_latent_conditional_frames"] = min(2, (video.shape[1] - 1) // pipe.vae_scale_factor_temporal + 1)
        with torch.no_grad():
            (frames,) = pipe(**kwargs)[:1]
        return frames.cpu()


def _check_torchvision(pipe) -> None:
    """diffusers resizes Cosmos' padding mask with torchvision, which dfbench does not require."""
    if getattr(pipe.transformer.config, "concat_padding_mask", False):
        try:
            import torchvision  # noqa: F401
        except ImportError:
            raise DfbenchError(
                "this Cosmos transformer needs torchvision; install the torchvision build that matches your torch."
            ) from None


def _flag(value: Any) -> bool:
    """A boolean model option, also when it arrives as text from ``--model-arg``."""
    if isinstance(value, str):
        if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise DfbenchError(f"accept_no_guardrail must be true or false, got '{value}'.")
        return value.lower() in ("true", "1", "yes")
    return bool(value)
