"""The embedded synthetic world (``--dataset synthetic``): street clips generated on the fly.

A procedural street scene seen through a slowly panning camera, with cars and
people whose motion is constant most of the time but, at random moments, turns
around, stops or starts again. The future given four context frames therefore
has several distinct plausible outcomes, which is what separates a generative
world model from a deterministic one on best-of-N, while the usual constant
motion still rewards a model that learned dynamics over copying the last frame.

Every clip comes from a seed derived from ``(split, index)`` alone, so a sample id
names the same pixels and labels on every run and machine. Random draws are
split into independent streams (layout, dynamics, one per frame), so a clip with
a longer duration or a coarser time stride shows exactly the same world.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace

import numpy as np
import torch

from dfbench.data.base import SEG_IGNORE, Clip, DataProblem, EvalDataset
from dfbench.data.checks import reject_unknown_options
from dfbench.data.common import as_frames
from dfbench.data.protocol_labels import protocol_labels
from dfbench.data.synthetic_config import SyntheticConfig, load_config, synthetic_spec
from dfbench.data.synthetic_render import (
    CAR,
    NUM_FIXED_MATERIALS,
    PERSON,
    Agents,
    Materials,
    Scene,
    render_frame,
)
from dfbench.errors import DfbenchError
from dfbench.protocol import resize_frames

LAYOUT_STREAM, RIGHT_STREAM, LEFT_STREAM, DYNAMICS_STREAM, FRAME_STREAM = range(5)

# World constants (pixels of the native frame, metres, probabilities per simulation step).
GROUND_DEPTH_AT_HORIZON = 75.0  # stays below the 80 m cap of the depth metric
GROUND_DEPTH_AT_BOTTOM = 3.0
# Building fronts carry a window grid of one physical spacing, so the grid's apparent pitch
# tells their depth (pitch = spacing * focal / depth), as in a real street: a head can read
# a building's distance from how it looks. The setback jitter is what appearance cannot tell.
WINDOW_SPACING = 1.8  # metres between window centres on every facade
SETBACK_JITTER = 1.5  # metres, uniform either side
P_TURN_OR_STOP = 0.10  # a moving agent reverses or stops (half each)
P_START = 0.30  # a stopped agent sets off, left or right
P_MOVING_AT_START = 0.85
OFFSCREEN_MARGIN = 12  # columns an agent may leave the view by before it turns back


@dataclass(frozen=True)
class WorldClip:
    """A rendered clip at native resolution, with the world state behind it.

    Attributes:
        steps: int64 [T] simulation step of each frame.
        frames: uint8 [T, H, W, 3].
        seg: int64 [T, H, W], 255 = void.
        depth: float32 [T, H, W] metres, 0 = invalid.
        scene, agents: what was drawn (``agents.x[steps]`` are the agent positions).
    """

    steps: np.ndarray
    frames: np.ndarray
    seg: np.ndarray
    depth: np.ndarray
    scene: Scene
    agents: Agents


def clip_seed(split: str, index: int) -> int:
    """A 128-bit seed from (split, index) through SHA-256: stable across Python runs and machines."""
    digest = hashlib.sha256(f"dfbench-synthetic/{split}/{index}".encode()).digest()
    return int.from_bytes(digest[:16], "little")


def stream(seed: int, *key: int) -> np.random.Generator:
    """An independent generator per purpose, so drawing more of one never shifts another."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


class MaterialTable:
    """Collects the clip's surfaces; the fixed ones first, in ``MATERIAL_*`` order."""

    def __init__(self, classes: tuple[str, ...], rng: np.random.Generator):
        self.label_of = {name: i for i, name in enumerate(classes)}
        self.colour, self.texture, self.label = [], [], []
        # base colour, texture strength, class; jittered per clip so colour is a strong but imperfect cue
        fixed = [
            ((120, 170, 225), 3, "sky"),
            ((85, 85, 92), 14, "road"),
            ((215, 215, 200), 6, "road"),  # lane marking
            ((165, 150, 140), 18, "sidewalk"),
            ((75, 125, 55), 30, "vegetation"),  # grass
            ((50, 100, 45), 35, "vegetation"),  # tree canopy
            ((90, 65, 45), 10, "vegetation"),  # tree trunk
            ((110, 110, 115), 4, None),  # pole: void, like unlabelled street furniture
            ((55, 65, 85), 8, "building"),  # window
            ((25, 25, 25), 4, "car"),  # wheel
            ((70, 90, 110), 6, "car"),  # car window
            ((200, 160, 130), 4, "person"),  # skin
            ((45, 50, 70), 6, "person"),  # trousers
        ]
        for colour, texture, label in fixed:
            self.add(np.asarray(colour) + rng.normal(0, 8, 3), texture, label)
        assert len(self.colour) == NUM_FIXED_MATERIALS

    def add(self, colour, texture: float, label: str | None) -> int:
        if len(self.colour) == 256:
            raise DfbenchError("synthetic clip too long: more than 256 surfaces; use fewer frames or a smaller stride")
        self.colour.append(np.clip(colour, 0, 255))
        self.texture.append(texture)
        self.label.append(SEG_IGNORE if label is None else self.label_of[label])
        return len(self.colour) - 1

    def freeze(self) -> Materials:
        return Materials(
            colour=np.asarray(self.colour, np.float32),
            texture=np.asarray(self.texture, np.float32),
            label=np.asarray(self.label, np.uint8),
        )


BUILDING_COLOURS = np.array([(150, 140, 130), (170, 120, 95), (120, 120, 125), (190, 180, 160), (140, 110, 90)], float)
CAR_COLOURS = np.array([(180, 30, 30), (30, 60, 160), (225, 225, 225), (30, 30, 35), (160, 160, 165), (210, 180, 40), (40, 110, 60)], float)


def sample_street(
    rng: np.random.Generator, start: int, limit: int, direction: int, horizon: int, prop_depth: float, focal: float,
    table: MaterialTable,
):
    """Buildings, gaps, trees and poles from ``start`` outwards until ``limit`` is covered.

    Walking outwards from column 0 with its own generator keeps the street the same
    however far a longer clip pans. A building's depth follows its window pitch
    (:data:`WINDOW_SPACING`); the draws are those of version 2, so only depth changed.
    """
    blocks, trees, poles = [], [], []
    edge = start
    while (edge < limit) if direction > 0 else (edge > limit):
        gap = rng.random() < 0.2
        width = int(rng.integers(4, 14) if gap else rng.integers(14, 40))
        top = horizon if gap else int(rng.integers(2, horizon - 4))
        colour = BUILDING_COLOURS[rng.integers(len(BUILDING_COLOURS))] + rng.normal(0, 12, 3)
        material = table.add(colour, 12, "building")
        setback = rng.uniform(-SETBACK_JITTER, SETBACK_JITTER)  # one draw, where version 2 drew its depth
        pitch = rng.integers(5, 9, size=2)
        depth = WINDOW_SPACING * focal / float(np.sqrt(pitch[0] * pitch[1])) + setback
        left = edge if direction > 0 else edge - width
        blocks.append((left, left + width, top, material, depth, *pitch))
        if rng.random() < 0.35:
            trees.append((left + rng.uniform(0, width), rng.uniform(4, 8), prop_depth))
        if rng.random() < 0.3:
            poles.append((left + rng.uniform(0, width), rng.uniform(horizon - 16, horizon - 6), prop_depth))
        edge += direction * width
    return blocks, trees, poles


def sample_scene(seed: int, num_steps: int, config: SyntheticConfig) -> tuple[Scene, MaterialTable, np.random.Generator]:
    """The static layout of a clip that lasts ``num_steps`` simulation steps."""
    height, width = config.native_size
    rng = stream(seed, LAYOUT_STREAM)
    table = MaterialTable(config.classes, rng)
    horizon = int(rng.integers(20, 29))
    far_walk_end = horizon + max(2, round(0.08 * (height - horizon)))
    near_walk_end = height - int(rng.integers(4, 9))
    road_end = near_walk_end - int(rng.integers(8, 12))
    lane_row = (far_walk_end + road_end) // 2
    # Flat ground: depth = k / (row - horizon + c), pinned at both ends.
    span = height - 1 - horizon
    c = span / (GROUND_DEPTH_AT_HORIZON / GROUND_DEPTH_AT_BOTTOM - 1)
    k = GROUND_DEPTH_AT_HORIZON * c
    ground_depth = np.zeros(height, np.float32)
    ground_depth[horizon:] = k / (np.arange(height - horizon) + c)
    pan_speed = float(rng.uniform(0.6, 2.0) * rng.choice([-1, 1]))
    gain = (rng.uniform(0.75, 1.15) * rng.uniform(0.92, 1.08, 3)).astype(np.float32)

    travel = pan_speed * (num_steps - 1)
    margin = 16
    prop_depth = float(ground_depth[far_walk_end - 1])
    right = sample_street(stream(seed, RIGHT_STREAM), 0, max(0.0, travel) + width + margin, 1, horizon, prop_depth, k, table)
    left = sample_street(stream(seed, LEFT_STREAM), 0, min(0.0, travel) - margin, -1, horizon, prop_depth, k, table)
    blocks = sorted(left[0] + right[0])
    edges = np.array([b[0] for b in blocks] + [blocks[-1][1]], np.int64)
    scene = Scene(
        height=height,
        width=width,
        horizon=horizon,
        far_walk_end=far_walk_end,
        road_end=road_end,
        near_walk_end=near_walk_end,
        ground_depth=ground_depth,
        focal=float(k),
        lane_row=lane_row,
        pan_speed=pan_speed,
        building_edges=edges,
        building_top=np.array([b[2] for b in blocks], np.int64),
        building_material=np.array([b[3] for b in blocks], np.int64),
        building_depth=np.array([b[4] for b in blocks], np.float32),
        window_pitch=np.array([b[5:7] for b in blocks], np.int64),
        trees=np.asarray(left[1] + right[1], np.float32).reshape(-1, 3),
        poles=np.asarray(left[2] + right[2], np.float32).reshape(-1, 3),
        materials=table.freeze(),  # replaced once the agents have added theirs
        gain=gain,
    )
    return scene, table, rng


def sample_agents(scene: Scene, table: MaterialTable, rng: np.random.Generator) -> list[tuple]:
    """Cars on two lanes and people on the near sidewalk; size and speed scale as 1 / depth.

    Returns:
        (kind, ground row, (width, height), material, cruising speed) per agent.
    """
    agents = []
    for lane_bottom in (scene.lane_row - 2, scene.road_end - 3):
        for _ in range(int(rng.integers(1, 3))):
            bottom = lane_bottom + int(rng.integers(-1, 2))
            scale = scene.focal / scene.ground_depth[bottom]  # pixels per unit of size at this row
            colour = CAR_COLOURS[rng.integers(len(CAR_COLOURS))] + rng.normal(0, 10, 3)
            material = table.add(colour, 4, "car")
            agents.append((CAR, bottom, (int(1.6 * scale), int(0.68 * scale)), material, rng.uniform(0.4, 0.64) * scale))
    for _ in range(int(rng.integers(1, 4))):
        bottom = int(rng.integers(scene.road_end + 2, scene.near_walk_end + 1))
        scale = scene.focal / scene.ground_depth[bottom]
        material = table.add(rng.uniform(30, 230, 3), 4, "person")
        agents.append((PERSON, bottom, (max(5, int(0.3 * scale)), int(0.85 * scale)), material, rng.uniform(0.18, 0.26) * scale))
    return agents


def simulate(specs: list[tuple], scene: Scene, rng: np.random.Generator, num_steps: int) -> Agents:
    """Rolls the agents forward: constant velocity, broken at random by turns, stops and starts.

    Every step draws the same number of values whatever happens, so the first
    steps of a long simulation equal a short one.
    """
    count = len(specs)
    kind = np.array([s[0] for s in specs], np.int64)
    bottom = np.array([s[1] for s in specs], np.int64)
    size = np.array([s[2] for s in specs], np.int64).reshape(count, 2)
    cruise = np.array([s[4] for s in specs], np.float32)
    x = np.empty((num_steps, count), np.float32)
    velocity = np.empty((num_steps, count), np.float32)
    facing = np.empty((num_steps, count), np.int64)

    x[0] = rng.uniform(-OFFSCREEN_MARGIN, scene.width + OFFSCREEN_MARGIN, count)
    heading = rng.choice([-1, 1], count)
    moving = rng.random(count) < P_MOVING_AT_START
    limit = OFFSCREEN_MARGIN + size[:, 0] / 2
    for step in range(num_steps):
        event, choice = rng.random(count), rng.random(count)
        if step > 0:
            turn_or_stop = moving & (event < P_TURN_OR_STOP)
            start = ~moving & (event < P_START)
            heading = np.where(turn_or_stop & (choice < 0.5), -heading, heading)
            heading = np.where(start, np.where(choice < 0.5, -1, 1), heading)
            moving = (moving & ~(turn_or_stop & (choice >= 0.5))) | start
        # Agents that leave the view by more than the margin turn back towards it.
        camera = scene.pan_speed * step
        heading = np.where(x[step] < camera - limit, 1, np.where(x[step] > camera + scene.width + limit, -1, heading))
        velocity[step] = np.where(moving, heading * cruise, 0.0)
        facing[step] = heading
        if step + 1 < num_steps:
            x[step + 1] = x[step] + velocity[step]
    return Agents(
        kind=kind,
        bottom=bottom,
        size=size,
        depth=scene.ground_depth[bottom],
        material=np.array([s[3] for s in specs], np.int64),
        x=x,
        velocity=velocity,
        facing=facing,
    )


def generate(split: str, index: int, num_frames: int, stride: int = 1) -> WorldClip:
    """Renders ``num_frames`` frames, ``stride`` simulation steps apart, of clip ``(split, index)``."""
    if num_frames < 1 or stride < 1 or index < 0:
        raise DfbenchError(f"synthetic clip needs num_frames >= 1, stride >= 1, index >= 0 (got {num_frames}, {stride}, {index})")
    config = load_config()
    seed = clip_seed(split, index)
    steps = np.arange(num_frames, dtype=np.int64) * stride
    num_steps = int(steps[-1]) + 1
    scene, table, rng = sample_scene(seed, num_steps, config)
    specs = sample_agents(scene, table, rng)
    agents = simulate(specs, scene, stream(seed, DYNAMICS_STREAM), num_steps)
    scene = replace(scene, materials=table.freeze())
    rendered = [render_frame(scene, agents, int(t), stream(seed, FRAME_STREAM, int(t))) for t in steps]
    frames, seg, depth = (np.stack(parts) for parts in zip(*rendered))
    return WorldClip(steps=steps, frames=frames, seg=seg, depth=depth, scene=scene, agents=agents)


SAMPLE_ID = re.compile(r"^(?P<split>[a-z]+)-(?P<index>\d+)$")


class SyntheticDataset(EvalDataset):
    """The embedded synthetic street world: no files, every clip generated from its id.

    Args:
        root: ignored; the data set is embedded (so is ``config_path``).
        frame_size: protocol short side the frames are resized to.
        split: "val" (evaluation) or "train" (for training world models and heads).
        num_clips: how many clips the split lists; defaults to the size in the YAML.
            Any index works with :meth:`clip`, so training is not limited to it.
        labels: task to produce -> the world's task its labels come from (a protocol's
            renaming, e.g. ``{"reldepth256": "depth"}``); None: ``seg`` and ``depth``.
        resize: False keeps the frames at the native size (the feature space resizes them).
    """

    config = load_config()
    spec = synthetic_spec(config)
    class_names: list[str] = list(config.classes)

    def __init__(
        self,
        root: str | None = None,
        frame_size: int | None = None,
        split: str = "val",
        num_clips: int | None = None,
        *,
        config_path: str | None = None,
        labels: dict[str, str] | None = None,
        resize: bool = True,
        **options,
    ):
        reject_unknown_options(self.name, options)
        self.labels = dict(labels) if labels is not None else {task: task for task in self.tasks}
        if not set(self.labels.values()) <= set(self.tasks):
            raise DfbenchError(f"synthetic has no {sorted(set(self.labels.values()) - set(self.tasks))} labels; it has {sorted(self.tasks)}.")
        self.resize = resize
        if split not in self.config.splits:
            raise DfbenchError(f"synthetic has no split {split!r}; choose one of {sorted(self.config.splits)}")
        self.frame_size = self.config.frame_size if frame_size is None else frame_size
        self.split = split
        self.num_clips = self.config.splits[split] if num_clips is None else num_clips

    def sample_ids(self) -> list[str]:
        return [f"{self.split}-{i:05d}" for i in range(self.num_clips)]

    def load(self, sample_id: str) -> Clip:
        match = SAMPLE_ID.match(sample_id)
        if match is None or match["split"] not in self.config.splits:
            raise DfbenchError(f"not a synthetic sample id: {sample_id!r} (expected e.g. 'val-00017')")
        return self.clip(int(match["index"]), self.config.clip_length, self.config.clip_stride, match["split"], sample_id)

    def clip(self, index: int, num_frames: int, stride: int = 1, split: str = "train", sample_id: str | None = None) -> Clip:
        """Any clip of the world, of any length and time stride, labelled on every frame.

        Args:
            index: clip index; any non-negative integer.
            num_frames: frames to render.
            stride: simulation steps between frames (one step lasts 1 / fps s).
            split: the seed family, so training never sees validation clips.
            sample_id: id to put on the clip; defaults to ``"<split>-<index>:<frames>x<stride>"``.

        Returns:
            A Clip with frames resized per protocol and native-resolution labels.
        """
        world = generate(split, index, num_frames, stride)
        # Like the reference loaders: frame_index / fps in fp32, minus the first.
        timestamps = torch.from_numpy(world.steps.astype(np.float32) / np.float32(self.fps))
        return Clip(
            sample_id=sample_id or f"{split}-{index:05d}:{num_frames}x{stride}",
            frames=resize_frames(world.frames, self.frame_size) if self.resize else as_frames(world.frames),
            timestamps=timestamps - timestamps[0],
            labels=protocol_labels({"seg": torch.from_numpy(world.seg), "depth": torch.from_numpy(world.depth)}, self.labels),
        )

    def check(self, deep: bool = False) -> list[DataProblem]:
        """Nothing to check: every clip is generated."""
        return []


class SyntheticTrainClips:
    """Head training data: whole clips of the ``train`` split, labelled on every frame for every task."""

    def clips(self, frame_size: int, limit: int | None) -> list[Clip]:
        train = SyntheticDataset(frame_size=frame_size, split="train", num_clips=limit)
        return [train.load(sample_id) for sample_id in train.sample_ids()]


TRAIN_CLIPS = SyntheticTrainClips()
