"""What dfbench knows about an evaluation data set, declared once beside its loader.

Every :class:`~dfbench.data.base.EvalDataset` subclass carries a ``spec``; the registry,
``dfbench run`` (default feature space, decoding workers, version in the results and
the feature-cache key), ``check-data``, data roots and head training read it. This
module imports no torch, so listing data sets stays cheap.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from dfbench.errors import DfbenchError

PAPER_FEATURE_SPACE = "dinov3-vitb16"


@dataclass(frozen=True)
class DatasetSpec:
    """One evaluation data set.

    Attributes:
        name: registry name (``--dataset``).
        display: name printed in tables.
        version: bumped whenever the clips or labels change; written into every result
            and into the feature-cache key.
        tasks: task -> number of classes (segmentation) or 1 (depth).
        fps: frame rate of the clips' timestamps.
        env: environment variable naming the data root; None for data sets without files.
        default_feature_space: evaluated in this feature space unless ``--feature-space``.
        decode_workers: DataLoader processes decoding clips by default (0: in process).
        train_frames: lazy ``"module:attr"`` target of the lister of labelled training
            frames for the heads (see :mod:`dfbench.data.train_frames`); None if none.
        moving_classes: segmentation classes of things that move (MO-mIoU averages them
            under protocols that score moving objects); empty if the data set has none.
        protocol_tasks: protocol name -> tasks (task -> classes) the data set also has
            under that protocol only (Cityscapes' relative depth under dinoforesight).
        protocol_feature_spaces: protocol name -> the feature space the data set is evaluated
            in under it, where not the protocol's default (the synthetic world's tiny spaces).
    """

    name: str
    display: str
    version: str
    tasks: Mapping[str, int]
    fps: float
    env: str | None = None
    default_feature_space: str = PAPER_FEATURE_SPACE
    decode_workers: int = 2
    train_frames: str | None = None
    moving_classes: tuple[int, ...] = ()
    protocol_tasks: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    protocol_feature_spaces: Mapping[str, str] = field(default_factory=dict)

    def tasks_under(self, protocol: str) -> dict[str, int]:
        """The data set's own tasks (task -> classes) under a protocol, before it renames them."""
        return {**self.tasks, **self.protocol_tasks.get(protocol, {})}

    def __post_init__(self) -> None:
        if not self.tasks:
            raise DfbenchError(f"data set spec '{self.name}' names no tasks; give tasks={{task: num_classes}}.")
        if self.fps <= 0:
            raise DfbenchError(f"data set spec '{self.name}' has fps {self.fps}; give the clips' frame rate.")
        if self.decode_workers < 0:
            raise DfbenchError(f"data set spec '{self.name}' has decode_workers {self.decode_workers}; give 0 or more.")

    @property
    def needs_root(self) -> bool:
        return self.env is not None

    @classmethod
    def from_class(cls, dataset: type) -> DatasetSpec:
        """The spec of a data set class that sets only ``name``, ``tasks`` and ``fps``."""
        name = dataset.name
        version = getattr(dataset, "version", None)
        return cls(
            name=name,
            display=name,
            version=str(version) if isinstance(version, (str, int)) else "unversioned",
            tasks=dict(dataset.tasks),
            fps=float(dataset.fps),
            env=f"{name.upper().replace('-', '_')}_ROOT",
        )
