"""What dfbench knows about a world model variant, declared once (no torch here).

A :class:`ModelSpec` is read by the registry, ``dfbench run`` and ``list``, training,
FLOPs counting, the tables and the demo, so a new variant of a built-in family is one
declaration (plus its weights). Third-party adapters registered with
``@register_model`` or an entry point get a spec derived from their class attributes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path

from dfbench.errors import DfbenchError

ROLES = ("lower_bound", "model", "upper_bound")
ARCHITECTURES = ("deltaworld", "dino-world", "dino-foresight")
TOKENS = ("delta", "frame")
SHIPPED_PACKAGE = "dfbench.adapters"
SHIPPED_FOLDER = "assets"


@dataclass(frozen=True)
class WeightSource:
    """Where one weight file comes from, and under what terms.

    Exactly one of ``shipped`` (a file in ``dfbench/adapters/assets``) or ``hub_id``
    (a Hugging Face repository, with ``filename`` inside it) is set.

    Attributes:
        shipped: file name under the package's ``adapters/assets`` folder.
        hub_id: ``owner/name`` of a hub repository.
        filename: the file inside the hub repository.
        origin: who made the weights and how (a recipe, a release).
        licence: the licence the weights come under, None when the source states none.
    """

    shipped: str | None = None
    hub_id: str | None = None
    filename: str = "pytorch_model.bin"
    origin: str = ""
    licence: str | None = None

    def __post_init__(self) -> None:
        if (self.shipped is None) == (self.hub_id is None):
            raise DfbenchError("a weight source names either a shipped file or a hub id, not both or neither.")

    @property
    def location(self) -> str:
        """A local path for shipped weights, else the hub id (what the loaders take)."""
        if self.shipped is not None:
            return str(files(SHIPPED_PACKAGE).joinpath(SHIPPED_FOLDER, self.shipped))
        return str(self.hub_id)

    def is_available_offline(self) -> bool:
        return self.shipped is not None and Path(self.location).is_file()


@dataclass(frozen=True)
class PixelInput:
    """How a pixel-space model takes the protocol's context (whole frames, not crops).

    The harness resizes each clip's frames so the short side is ``short_side`` (the
    protocol's size when None) with the aspect ratio kept, shrinking further only if a
    side would exceed the input shape, pads them at the bottom and right to
    ``height`` x ``width``, and hands the model ``num_frames`` frames picked from the
    protocol's context by ``context_map``.

    Attributes:
        height, width: the model's input shape in pixels (what frames are padded to).
        num_frames: context frames the model conditions on.
        context_map: for each of them, the index of the protocol context frame it is
            (repeats allowed: four protocol frames can fill a five-frame input).
        stride: model frames per protocol frame step (1: the same spacing); the model
            generates ``stride`` frames per protocol step and returns those at the
            requested timestamps.
        short_side: the short side frames are resized to; None keeps the protocol's.
    """

    height: int
    width: int
    num_frames: int
    context_map: tuple[int, ...]
    stride: int = 1
    short_side: int | None = None

    def __post_init__(self) -> None:
        if len(self.context_map) != self.num_frames:
            raise DfbenchError(
                f"pixel input: context_map has {len(self.context_map)} entries for {self.num_frames} frames; give one per frame."
            )
        if min(self.height, self.width, self.num_frames, self.stride) < 1 or min(self.context_map, default=0) < 0:
            raise DfbenchError("pixel input: sizes, frame count and stride must be positive and context_map indices >= 0.")

    def as_dict(self) -> dict[str, Any]:
        """What a result records about how the model saw the context."""
        return {
            "input_size": [self.height, self.width],
            "num_frames": self.num_frames,
            "context_map": list(self.context_map),
            "stride": self.stride,
            "short_side": self.short_side,
        }


def spread_context(num_frames: int, context_length: int = 4, stride: int = 1) -> tuple[int, ...]:
    """A ``context_map`` ending on the last protocol frame, ``stride`` model frames per protocol step.

    Model frames before the first protocol frame repeat it: ``spread_context(5)`` is
    ``(0, 0, 1, 2, 3)``, ``spread_context(9, stride=2)`` is ``(0, 0, 0, 0, 1, 1, 2, 2, 3)``.
    """
    last = context_length - 1
    return tuple(max(0, last - (num_frames - 1 - i + stride - 1) // stride) for i in range(num_frames))


@dataclass(frozen=True)
class TableRow:
    """The variant's row in the paper's main table.

    Attributes:
        role: ``lower_bound`` and ``upper_bound`` open and close the table and are never
            bolded; ``model`` rows go between them in declaration order.
        reference: the model's name in ``results/reference/reported_numbers.csv``.
        short: the name of its reported row ("Copy last (paper)") when it differs from
            the display name.
        flops_reference: its row in the paper's GFLOPs table (Table 2), if any.
    """

    role: str = "model"
    reference: str | None = None
    short: str | None = None
    flops_reference: str | None = None

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise DfbenchError(f"table role '{self.role}' is not one of {', '.join(ROLES)}; fix the model spec.")


@dataclass(frozen=True)
class ModelSpec:
    """One world model variant.

    Attributes:
        name: registry name (``dfbench run --model``).
        display: name printed in tables and figures.
        family: the adapter class as a lazy ``"module:Class"`` target; one class serves
            every variant of a family and reads its flags from the spec.
        stochastic: samples differ (scored best-of-N and mean-of-N); else one sample.
        oracle: handed the true future features (upper bounds only).
        tokens: ``"delta"`` or ``"frame"`` for a DeltaTok-token model, None otherwise.
        best_of_many: the predictor is trained with best-of-many noise queries.
        architecture: the :mod:`dfbench.models` network it instantiates (``deltaworld`` or
            ``dino-world``): what ``dfbench train predictor`` builds and ``dfbench flops``
            counts; None for models without one (the bounds, third-party adapters).
        default_protocol: evaluation protocol (``configs/protocol/<name>.yaml``).
        default_feature_space: the feature space its released weights live in.
        weights: feature space -> part (``"predictor"``, ``"tokenizer"``) -> source.
        requires_weights: it cannot run without weights for the feature space.
        table: its row in the paper's main table; None for models the paper lacks.
        description: one line on what the variant is.
        pixel_input: set for pixel-space models (video generators): how they take the
            context; the harness then crops and encodes the frames they return.
        options: family-specific settings (a diffusers pipeline class, denoising steps,
            a licence page), read only by the family's adapter class.
    """

    name: str
    display: str
    family: str
    stochastic: bool = False
    oracle: bool = False
    tokens: str | None = None
    best_of_many: bool = False
    architecture: str | None = None
    default_protocol: str = "dinoworld"
    default_feature_space: str = "dinov3-vitb16"
    weights: Mapping[str, Mapping[str, WeightSource]] = field(default_factory=dict)
    requires_weights: bool = False
    table: TableRow | None = None
    description: str = ""
    pixel_input: PixelInput | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if ":" not in self.family:
            raise DfbenchError(f"model spec '{self.name}': family must be a 'module:Class' target, got '{self.family}'.")
        if self.tokens not in (None, *TOKENS):
            raise DfbenchError(f"model spec '{self.name}': tokens must be one of {TOKENS} or None, got '{self.tokens}'.")
        if self.architecture not in (None, *ARCHITECTURES):
            raise DfbenchError(
                f"model spec '{self.name}': architecture must be one of {ARCHITECTURES} or None, got '{self.architecture}'."
            )

    def weight(self, feature_space: str, part: str) -> WeightSource | None:
        """The declared source of one part's weights in a feature space, if any."""
        return self.weights.get(feature_space, {}).get(part)

    def runs_offline(self, feature_space: str) -> bool:
        """Whether it runs with what ships with dfbench (``dfbench demo`` evaluates it)."""
        if not self.requires_weights:
            return True
        sources = self.weights.get(feature_space, {})
        return bool(sources) and all(source.is_available_offline() for source in sources.values())

    @classmethod
    def from_class(cls, name: str, adapter: type) -> ModelSpec:
        """The spec of a third-party adapter class, from its class attributes."""
        return cls(
            name=name,
            display=name,
            family=f"{adapter.__module__}:{adapter.__qualname__}",
            stochastic=bool(getattr(adapter, "stochastic", False)),
            oracle=bool(getattr(adapter, "oracle", False)),
            description=((adapter.__doc__ or "").strip().splitlines() or [""])[0],
            pixel_input=getattr(adapter, "pixel_input", None),
        )
