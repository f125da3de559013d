"""Small data trees in the real on-disk formats of Cityscapes, KITTI and VSPW.

The generators write the real folder layouts, file names and encodings (8-bit RGB PNG
frames, 8-bit labelIds PNGs, 16-bit depth PNGs, JPEG frames with palette PNG masks)
so the loaders are tested on files they would meet in the real downloads. Image
content is a smooth gradient plus noise, seeded per file, so two different frames
never decode to the same pixels and a loader that picks a wrong frame is caught.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
from PIL import Image

CITYSCAPES_SIZE = (1024, 2048)
KITTI_SIZE = (375, 1242)
VSPW_SIZE = (480, 853)

# Cityscapes labelIds that appear in gtFine: 0..33 (void ids included) and, rarely, -1,
# which the PNGs cannot store; a tree draws from all of 0..33.
CITYSCAPES_LABEL_IDS = np.arange(34, dtype=np.uint8)


def _rng(*key: object) -> np.random.Generator:
    return np.random.default_rng(_stable_seed(key))


def _stable_seed(key: tuple) -> int:
    # hash() of str is salted per process; a byte sum keeps the content identical across runs.
    text = "/".join(str(k) for k in key).encode()
    seed = 0
    for byte in text:
        seed = (seed * 131 + byte) % 2**32
    return seed


def photo_like(height: int, width: int, *key: object) -> np.ndarray:
    """uint8 [H, W, 3]: a per-file gradient plus mild noise, compressing about like a photo."""
    rng = _rng("frame", *key)
    rows = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    cols = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :, None]
    base = rng.uniform(20, 235, size=3).astype(np.float32)
    slope = rng.uniform(-60, 60, size=(2, 3)).astype(np.float32)
    noise = rng.normal(0, 6, size=(height, width, 3)).astype(np.float32)
    image = base + rows * slope[0] + cols * slope[1] + noise
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def write_png(path: Path, array: np.ndarray) -> Path:
    """Writes a PNG whose mode follows the array (uint8 HxWx3 RGB, uint8 L, uint16 I;16).

    Fast compression: test trees favour speed over size.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, compress_level=1)
    return path


# ---------------------------------------------------------------------------------- Cityscapes


def cityscapes_frame_name(city: str, sequence: int, frame: int) -> str:
    return f"{city}_{sequence:06d}_{frame:06d}_leftImg8bit.png"


def make_cityscapes_tree(
    root: Path,
    *,
    split: str = "val",
    cities: Iterable[str] = ("frankfurt", "lindau"),
    sequences: int = 2,
    size: tuple[int, int] = (32, 64),
    snippet_frames: int = 30,
    relative_depth: bool = False,
) -> list[str]:
    """Writes ``leftImg8bit_sequence/<split>`` snippets and their ``gtFine/<split>`` labels.

    Each snippet has ``snippet_frames`` frames; as in the release, its 20th frame
    (index 19) carries the fine annotation, with the ``_color``, ``_instanceIds`` and
    ``_polygons.json`` files beside the ``_labelIds`` PNG. Labelled frame numbers differ
    per sequence (294, 314, ... like frankfurt_000000_000294). ``relative_depth`` also writes
    DINO-Foresight's ``leftImg8bit_sequence_depthv2/<split>`` 8-bit relative depth PNG of each
    labelled frame (0 = invalid, as its min-max normalisation leaves the farthest pixels).

    Returns:
        The clip ids the loader should produce, ``<city>/<city>_<seq>_<frame>``, sorted.
    """
    height, width = size
    ids = []
    for city in cities:
        for sequence in range(sequences):
            labelled = 294 + 20 * sequence
            first = labelled - 19
            for frame in range(first, first + snippet_frames):
                path = root / "leftImg8bit_sequence" / split / city / cityscapes_frame_name(city, sequence, frame)
                write_png(path, photo_like(height, width, "cityscapes", city, sequence, frame))
            stem = f"{city}_{sequence:06d}_{labelled:06d}"
            label_dir = root / "gtFine" / split / city
            rng = _rng("cityscapes-label", city, sequence)
            label_ids = rng.choice(CITYSCAPES_LABEL_IDS, size=(height, width))
            write_png(label_dir / f"{stem}_gtFine_labelIds.png", label_ids)
            write_png(label_dir / f"{stem}_gtFine_instanceIds.png", label_ids.astype(np.uint16) * 1000)
            write_png(label_dir / f"{stem}_gtFine_color.png", photo_like(height, width, "color", stem))
            (label_dir / f"{stem}_gtFine_polygons.json").write_text(json.dumps({"imgHeight": height, "imgWidth": width, "objects": []}))
            if relative_depth:
                write_png(cityscapes_depth_path(root, split, city, stem), relative_depth_png(height, width, stem))
            ids.append(f"{city}/{stem}")
    return sorted(ids)


def cityscapes_depth_path(root: Path, split: str, city: str, stem: str) -> Path:
    """Where DINO-Foresight's preprocessing writes the relative depth of ``<stem>_leftImg8bit.png``."""
    return root / "leftImg8bit_sequence_depthv2" / split / city / f"{stem}_leftImg8bit_depth.png"


def relative_depth_png(height: int, width: int, *key: object) -> np.ndarray:
    """uint8 [H, W] relative disparity: near (bottom) high, far (top) low, noisy, min 0 and max 255."""
    rng = _rng("reldepth", *key)
    rows = np.linspace(0.0, 255.0, height, dtype=np.float32)[:, None]
    image = rows + rng.normal(0, 12, size=(height, width)).astype(np.float32)
    image = (image - image.min()) / (image.max() - image.min()) * 255.0
    return image.astype(np.uint8)


# ---------------------------------------------------------------------------------------- KITTI

# Drives of the KITTI test tree: 2011_09_26 frames are 375x1242; the 2011_10_03 drive is
# written at 376x1241 so the KB crop's odd offsets are exercised.
KITTI_WIDE = "2011_09_26_drive_0002_sync"
KITTI_ODD = "2011_10_03_drive_0047_sync"
KITTI_NO_DEPTH = "2011_09_26_drive_0009_sync"
KITTI_SIZES = {KITTI_WIDE: (375, 1242), KITTI_ODD: (376, 1241), KITTI_NO_DEPTH: (375, 1242)}


def kitti_date(drive: str) -> str:
    return drive[:10]


def make_kitti_tree(
    root: Path,
    drives: Mapping[str, Iterable[int]],
    *,
    sizes: Mapping[str, tuple[int, int]] | None = None,
    depth_split: Mapping[str, str] | None = None,
    depth_frames: Mapping[str, Iterable[int]] | None = None,
) -> Path:
    """Writes raw frames ``<date>/<drive>/image_02/data`` and annotated depth for the drives.

    Args:
        root: the KITTI root.
        drives: drive folder name -> frame numbers to write.
        sizes: drive -> (height, width) of its frames and depth (default 375x1242; real
            drives of 2011_09_26 are 375x1242, of 2011_10_03 370x1226 or 376x1241).
        depth_split: drive -> "train" or "val" for the depth tree (default "val"); "none"
            writes no depth for that drive.
        depth_frames: drive -> frame numbers with depth (default: the same as frames).

    Returns:
        ``root``.
    """
    for drive, frames in drives.items():
        frames = list(frames)
        height, width = (sizes or {}).get(drive, KITTI_SIZE)
        for frame in frames:
            path = root / kitti_date(drive) / drive / "image_02" / "data" / f"{frame:010d}.png"
            write_png(path, photo_like(height, width, "kitti", drive, frame))
        split = (depth_split or {}).get(drive, "val")
        if split == "none":
            continue
        folder = root / split / drive / "proj_depth" / "groundtruth" / "image_02"
        for frame in (depth_frames or {}).get(drive, frames):
            write_png(folder / f"{frame:010d}.png", kitti_depth_png(height, width, drive, frame))
    return root


def kitti_depth_png(height: int, width: int, *key: object) -> np.ndarray:
    """uint16 depth * 256 like the annotated KITTI maps: sparse, with some ranges above 80 m."""
    rng = _rng("depth", *key)
    depth = rng.uniform(0.5, 100.0, size=(height, width))
    depth[rng.random((height, width)) < 0.7] = 0.0  # most pixels carry no lidar point
    depth[: height // 4] = 0.0  # no points in the sky, as in the real maps
    return np.rint(depth * 256.0).astype(np.uint16)


def kitti_split_line(drive: str, frame: int, *, with_depth: bool = True, focal: str = "721.5377") -> str:
    """One line of an Eigen-format split list."""
    image = f"{kitti_date(drive)}/{drive}/image_02/data/{frame:010d}.png"
    depth = f"{drive}/proj_depth/groundtruth/image_02/{frame:010d}.png" if with_depth else "None"
    return f"{image} {depth} {focal}"


def write_split_file(path: Path, lines: Iterable[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


# ----------------------------------------------------------------------------------------- VSPW


def vspw_palette() -> list[int]:
    """A 256-colour palette, as VSPW masks carry one (its colours do not matter to the loader)."""
    rng = _rng("palette")
    return rng.integers(0, 256, size=256 * 3).astype(int).tolist()


def make_vspw_tree(
    root: Path,
    videos: Mapping[str, int],
    *,
    split: str = "val",
    size: tuple[int, int] = (24, 43),
    first_name: int = 1,
    resource_forks: bool = True,
) -> Path:
    """Writes ``VSPW_480p/{<split>.txt, data/<video>/origin/*.jpg, data/<video>/mask/*.png}``.

    Frames are numbered from ``first_name`` (so names and list positions differ); masks
    are palette PNGs with values 0 (unlabelled), 1..124 (classes) and 255. With
    ``resource_forks`` each video also gets macOS ``._<name>.jpg`` files, which the
    loader must leave out.

    Returns:
        The ``VSPW_480p`` folder.
    """
    release = root / "VSPW_480p"
    height, width = size
    palette = vspw_palette()
    for video, count in videos.items():
        for position in range(count):
            name = f"{first_name + position:08d}"
            origin = release / "data" / video / "origin" / f"{name}.jpg"
            origin.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(photo_like(height, width, "vspw", video, name)).save(origin, quality=90)
            values = _rng("mask", video, name).choice(np.r_[np.arange(0, 125), 255], size=(height, width))
            mask = Image.fromarray(values.astype(np.uint8))
            mask.putpalette(palette)  # turns the L image into a palette (P) image
            mask_path = release / "data" / video / "mask" / f"{name}.png"
            mask_path.parent.mkdir(parents=True, exist_ok=True)
            mask.save(mask_path)
            if resource_forks and position % 7 == 0:
                (origin.parent / f"._{name}.jpg").write_bytes(b"\x00\x05\x16\x07" + b"\x00" * 60)
    release.mkdir(parents=True, exist_ok=True)
    (release / f"{split}.txt").write_text("".join(f"{video}\n" for video in videos))
    return release
