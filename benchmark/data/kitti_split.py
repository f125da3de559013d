"""The KITTI Eigen split lists: where they come from and how their lines read.

The KITTI evaluation uses the Eigen test split (Eigen et al., NeurIPS 2014) in the
697-line form that pairs each raw frame with its annotated depth map, as published
with AdaBins and reused by ZoeDepth, Depth Anything and DINOv2/DINOv3 depth
evaluations. Each line reads::

    2011_09_26/2011_09_26_drive_0002_sync/image_02/data/0000000069.png 2011_09_26_drive_0002_sync/proj_depth/groundtruth/image_02/0000000069.png 721.5377

(raw frame relative to the KITTI root, ground-truth depth relative to ``train/`` or
``val/`` of the annotated-depth tree or ``None`` where the frame has none, focal length
in pixels).

The list is public data but not ours to redistribute, so dfbench looks for it, in
this order:

1. ``--split-file FILE`` (any list in this format; it is used as given);
2. the cache, ``~/.cache/dfbench/kitti_eigen_test.txt`` (under ``$XDG_CACHE_HOME``
   when set);
3. a download from the pinned address below, accepted only if its sha256 matches,
   then kept in the cache.

Where to get it by hand: ``train_test_inputs/kitti_eigen_test_files_with_gt.txt`` in
the AdaBins repository (github.com/shariqfarooq123/AdaBins); the training list used
for head training is ``kitti_eigen_train_files_with_gt.txt`` beside it.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from dfbench.errors import DfbenchError

_ADABINS_RAW = (
    "https://raw.githubusercontent.com/shariqfarooq123/AdaBins/"
    "0952d91e9e762be310bb4cd055cbfe2448c0ce20/train_test_inputs/"
)
_DOWNLOAD_TIMEOUT_S = 30


@dataclass(frozen=True)
class SplitSource:
    """A published split list: its cache name, pinned address and checksum."""

    name: str
    cache_name: str
    url: str
    sha256: str


EIGEN_TEST = SplitSource(
    name="Eigen test",
    cache_name="kitti_eigen_test.txt",
    url=_ADABINS_RAW + "kitti_eigen_test_files_with_gt.txt",
    sha256="8d0499af9ab4c0d1cd7944d572b0e0e4412feab1e73f4003038426fde699b53a",
)

EIGEN_TRAIN = SplitSource(
    name="Eigen train",
    cache_name="kitti_eigen_train.txt",
    url=_ADABINS_RAW + "kitti_eigen_train_files_with_gt.txt",
    sha256="3655308ee4a017094dc620402db3fc587d769cfbfa9a16c6d0f8de6dcbe109ec",
)


@dataclass(frozen=True)
class SplitEntry:
    """One line of a split list.

    Attributes:
        date: recording day folder, e.g. "2011_09_26".
        drive: drive folder, e.g. "2011_09_26_drive_0002_sync".
        frame: frame number of the raw image (the file stem as an int).
        image: the raw frame path relative to the KITTI root.
        depth: the depth path relative to ``train/`` or ``val/``, None without ground truth.
    """

    date: str
    drive: str
    frame: int
    image: str
    depth: str | None


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/dfbench``, or ``~/.cache/dfbench``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "dfbench"


def file_sha256(path: Path) -> str:
    """The sha256 hex digest of a file (recorded so results say which list they used)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def locate_split_file(
    split_file: str | os.PathLike | None = None,
    source: SplitSource = EIGEN_TEST,
    *,
    cache: Path | None = None,
    download: bool = True,
) -> Path:
    """Finds the split list: the given file, then the cache, then the pinned download.

    Args:
        split_file: the ``--split-file`` value, used as given when set.
        source: which published list (EIGEN_TEST or EIGEN_TRAIN).
        cache: cache folder (default :func:`cache_dir`).
        download: whether to try the pinned address when the cache is empty.

    Raises:
        DfbenchError: the given file is missing, the cached or downloaded file does not
            match the pinned checksum, or the download failed.
    """
    if split_file is not None:
        path = Path(split_file).expanduser()
        if not path.is_file():
            raise DfbenchError(f"KITTI split file {path} does not exist; pass an existing file to --split-file.")
        return path
    cached = (cache or cache_dir()) / source.cache_name
    if cached.is_file():
        if file_sha256(cached) != source.sha256:
            raise DfbenchError(
                f"cached {source.name} list {cached} is not the standard list (sha256 differs); "
                f"delete it, or pass your list with --split-file."
            )
        return cached
    if not download:
        raise DfbenchError(_where_to_get(source, cached, "it is not in the cache"))
    return _download(source, cached)


def _where_to_get(source: SplitSource, cached: Path, why: str) -> str:
    return (
        f"the KITTI {source.name} list is needed and {why}: download {source.url} "
        f"(sha256 {source.sha256[:12]}...) and pass it with --split-file, or save it as {cached}."
    )


def _download(source: SplitSource, cached: Path) -> Path:
    try:
        with urllib.request.urlopen(source.url, timeout=_DOWNLOAD_TIMEOUT_S) as response:
            content = response.read()
    except (urllib.error.URLError, OSError) as error:
        raise DfbenchError(_where_to_get(source, cached, f"downloading it failed ({error})")) from error
    digest = hashlib.sha256(content).hexdigest()
    if digest != source.sha256:
        raise DfbenchError(_where_to_get(source, cached, f"the download has sha256 {digest[:12]}..., not the pinned one"))
    cached.parent.mkdir(parents=True, exist_ok=True)
    partial = cached.with_suffix(".part")
    partial.write_bytes(content)
    partial.replace(cached)  # atomic: a crash never leaves a half-written list in the cache
    return cached


def read_split(path: Path) -> list[SplitEntry]:
    """Parses a split list in the order of its lines.

    Raises:
        DfbenchError: a line does not have the expected form, naming the line.
    """
    entries = []
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        tokens = parts[0].split("/")
        try:
            if len(parts) < 2 or len(tokens) < 3:
                raise ValueError
            frame = int(Path(tokens[-1]).stem)
        except ValueError:
            raise DfbenchError(
                f"{path}:{number} is not a KITTI split line ('<date>/<drive>/image_02/data/<frame>.png "
                f"<depth path or None> <focal>'); pass the standard Eigen list with --split-file."
            ) from None
        depth = None if parts[1] == "None" else parts[1]
        entries.append(SplitEntry(date=tokens[0], drive=tokens[1], frame=frame, image=parts[0], depth=depth))
    return entries
