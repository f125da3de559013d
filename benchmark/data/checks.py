"""Reading and validating the files of the real data sets (Cityscapes, KITTI, VSPW).

The three loaders decode files the same way the reference evaluation does (PIL, RGB
for frames, raw integer arrays for labels and depth) and validate a data root the
same way before any model runs: every problem becomes a :class:`DataProblem` that
names the file and what was expected there, so ``dfbench check-data`` can list
them all at once instead of failing on the first clip hours into a run.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Sequence
from itertools import zip_longest
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from dfbench.data.base import DataProblem, EvalDataset
from dfbench.errors import DfbenchError

# How many bytes at the end of a file the cheap truncation check reads: enough for the
# PNG IEND chunk or the JPEG end-of-image marker plus a little padding some writers add.
_TAIL_BYTES = 1024
_PNG_END = b"IEND"
_JPEG_END = b"\xff\xd9"

# How many problems the one-line error names before it says "... and N more".
_NAMED_IN_ERROR = 3


def read_rgb(path: Path) -> np.ndarray:
    """Decodes one frame to uint8 [H, W, 3] RGB with PIL, as the reference loader does."""
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def read_label_array(path: Path, dtype: type = np.int64) -> np.ndarray:
    """Decodes a label PNG to its raw values (palette indices, label ids or 16-bit depth)."""
    with Image.open(path) as image:
        return np.array(image, dtype=dtype)


def clip_timestamps(frame_indices: Sequence[int], fps: float) -> torch.Tensor:
    """Seconds relative to the first frame: ``index / fps`` in float32, then minus the first.

    The division happens in Python floats and the subtraction in float32, in this order,
    because that is how the reference builds its timestamps (bit-exact equality).
    """
    stamps = torch.as_tensor([index / fps for index in frame_indices], dtype=torch.float32)
    return stamps - stamps[0]


def missing_dirs(root: Path, expected: dict[str, str]) -> list[DataProblem]:
    """The expected sub-folders of ``root`` that do not exist.

    Args:
        root: the data root.
        expected: relative folder -> what it should contain, for the message.
    """
    if not root.is_dir():
        return [DataProblem(str(root), "an existing data root folder")]
    return [
        DataProblem(str(root / relative), f"folder {relative}/ ({what})")
        for relative, what in expected.items()
        if not (root / relative).is_dir()
    ]


def check_image(
    path: Path,
    expected: str,
    *,
    modes: Iterable[str] | None = None,
    min_size: tuple[int, int] | None = None,
    deep: bool = False,
) -> DataProblem | None:
    """Validates one image file; returns the problem or None.

    The cheap check opens the header with PIL (format, mode, size) and looks for the
    end marker in the file's tail, which catches truncated downloads without decoding
    the pixels. ``deep`` decodes every pixel, which also catches corrupt data inside.

    Args:
        path: the file.
        expected: what the file is, for the message ("frame f-12 of 7 ...").
        modes: PIL modes accepted (None accepts any).
        min_size: smallest accepted (height, width).
        deep: decode the whole image.
    """
    if not path.is_file():
        return DataProblem(str(path), f"missing {expected}")
    try:
        with Image.open(path) as image:
            if modes is not None and image.mode not in set(modes):
                return DataProblem(str(path), f"{expected} with mode {'/'.join(modes)}, found mode {image.mode}")
            width, height = image.size
            if min_size is not None and (height < min_size[0] or width < min_size[1]):
                return DataProblem(
                    str(path), f"{expected} of at least {min_size[0]}x{min_size[1]}, found {height}x{width}"
                )
            image_format = image.format
            if deep:
                image.load()
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as error:
        return DataProblem(str(path), f"a readable {expected} (PIL: {error})")
    if not deep and not _has_end_marker(path, image_format):
        return DataProblem(str(path), f"a complete {expected} (file is truncated)")
    return None


def check_clip_images(
    sample_id: str,
    span: str,
    frame_paths: Sequence[Path],
    label_paths: Sequence[Path] = (),
    label_name: str = "label",
    *,
    label_modes: Iterable[str] | None = None,
    min_size: tuple[int, int] | None = None,
    deep: bool = False,
) -> list[DataProblem]:
    """Validates the frames of one clip, each followed by its label file when there are any.

    Args:
        sample_id: the clip, for the messages.
        span: the frames' offsets, for the messages ("f-12..f step 2").
        frame_paths: the clip's frames.
        label_paths: one label file per frame, or none.
        label_name: what a label file is ("mask", "16-bit depth PNG").
        label_modes: PIL modes accepted for the label files.
        min_size: smallest accepted (height, width) of frames and labels.
        deep: decode the whole images.
    """
    problems = []
    for position, (frame, label) in enumerate(zip_longest(frame_paths, label_paths)):
        where = f"{position + 1} of {len(frame_paths)} ({span}) of clip {sample_id}"
        if problem := check_image(frame, f"frame {where}", min_size=min_size, deep=deep):
            problems.append(problem)
        if label is None:
            continue
        if problem := check_image(label, f"{label_name} {where}", modes=label_modes, min_size=min_size, deep=deep):
            problems.append(problem)
    return problems


def _has_end_marker(path: Path, image_format: str | None) -> bool:
    marker = {"PNG": _PNG_END, "JPEG": _JPEG_END}.get(image_format or "")
    if marker is None:
        return True
    with path.open("rb") as handle:
        handle.seek(0, 2)
        size = handle.tell()
        handle.seek(max(0, size - _TAIL_BYTES))
        return marker in handle.read()


def error_message(name: str, root: Path | str, problems: Sequence[DataProblem]) -> str:
    """One line naming the first problems and their count, and what to do about them."""
    count = len(problems)
    named = "; ".join(f"{p.expected}: {p.path}" for p in problems[:_NAMED_IN_ERROR])
    more = f"; ... and {count - _NAMED_IN_ERROR} more" if count > _NAMED_IN_ERROR else ""
    noun = "problem" if count == 1 else "problems"
    return (
        f"{name}: {count} {noun} in {root}: {named}{more}. "
        f"Fix the tree, or pass --data-root (run 'dfbench check-data --dataset {name}' for the full list)."
    )


def open_dataset(name: str, root: str | Path | None = None, **options) -> EvalDataset:
    """Builds a registered data set by name (root None resolves it, see :mod:`dfbench.data.roots`)."""
    from dfbench.registry import get_dataset_class

    return get_dataset_class(name)(root=None if root is None else str(root), **options)


def check_dataset(name: str, root: str | Path | None = None, *, deep: bool = False, **options) -> list[DataProblem]:
    """Validates a data root before any model runs.

    Args:
        name: registered data set name ("cityscapes", "kitti", "vspw").
        root: the data root; None resolves it from the environment or the config file.
        deep: decode every image fully instead of the cheap header and tail check.
        **options: passed to the data set (``split_file`` for KITTI).

    Returns:
        Every problem found, an empty list when the root is ready.
    """
    dataset = open_dataset(name, root, **options)
    return dataset.check(deep=deep) if _accepts_deep(dataset) else dataset.check()


def _accepts_deep(dataset: EvalDataset) -> bool:
    return "deep" in inspect.signature(dataset.check).parameters


def ensure_data_ok(dataset: str | EvalDataset, root: str | Path | None = None, *, deep: bool = False, **options) -> None:
    """Raises :class:`DfbenchError` with a one-line summary when the data root has problems.

    Args:
        dataset: a registered name or an already built data set.
        root: the data root when ``dataset`` is a name (None resolves it).
        deep: decode every image fully.
        **options: passed to the data set when ``dataset`` is a name.
    """
    if isinstance(dataset, str):
        dataset = open_dataset(dataset, root, **options)
    problems = dataset.check(deep=deep) if _accepts_deep(dataset) else dataset.check()
    if problems:
        raise DfbenchError(error_message(dataset.name, getattr(dataset, "root", root), problems))


def reject_unknown_options(name: str, options: dict) -> None:
    """Raises when a data set is given options it does not understand.

    Options left at None are ignored, so a caller may pass the same keyword set (for
    example ``split_file=None``) to every data set.
    """
    unknown = sorted(key for key, value in options.items() if value is not None)
    if unknown:
        raise DfbenchError(f"{name} does not take the option(s) {', '.join(unknown)}; remove them.")
