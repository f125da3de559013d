"""Drawing of the synthetic street world: one frame's pixels, segmentation and depth.

The world is described by a :class:`Scene` (static layout seen through a panning
camera) and :class:`Agents` (cars and people with a trajectory per simulation
step). Rendering goes through a per-pixel *material* map: every surface is a
material with a colour, a texture strength and a semantic class, so pixels,
labels and depth come from one rasterisation and can never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from dfbench.data.base import DEPTH_INVALID

CAR, PERSON = 0, 1


@dataclass(frozen=True)
class Materials:
    """Every surface of one clip.

    Attributes:
        colour: float32 [M, 3] base RGB.
        texture: float32 [M] amplitude of the world-anchored texture.
        label: uint8 [M] semantic class, or SEG_IGNORE for void surfaces.
    """

    colour: np.ndarray
    texture: np.ndarray
    label: np.ndarray


@dataclass(frozen=True)
class Scene:
    """The static part of a clip, in world columns (camera column 0 at step 0).

    Buildings tile the world left to right; a building whose ``top`` equals the
    horizon is a gap through which the sky shows.

    Attributes:
        height, width: native frame size.
        horizon: first ground row.
        far_walk_end, road_end, near_walk_end: last rows (exclusive) of the far
            sidewalk, the road and the near sidewalk; grass fills the rest.
        ground_depth: float32 [height] metres per ground row (0 above the horizon).
        focal: ground depth = focal / (rows below the horizon + a constant); an
            object of size s at depth d spans s * focal / d pixels.
        lane_row: row of the dashed lane marking.
        pan_speed: camera pan in pixels per simulation step.
        building_edges: int64 [B + 1] world columns where buildings start and end.
        building_top, building_material: int64 [B] top row and material.
        building_depth: float32 [B] metres.
        window_pitch: int64 [B, 2] window spacing (columns, rows).
        trees: float32 [N, 3] world column, canopy radius, depth.
        poles: float32 [P, 3] world column, top row, depth.
        materials: the clip's surfaces; the first ones are named by the
            ``MATERIAL_*`` indices below.
        gain: float32 [3] per-channel illumination of the clip.
    """

    height: int
    width: int
    horizon: int
    far_walk_end: int
    road_end: int
    near_walk_end: int
    ground_depth: np.ndarray
    focal: float
    lane_row: int
    pan_speed: float
    building_edges: np.ndarray
    building_top: np.ndarray
    building_material: np.ndarray
    building_depth: np.ndarray
    window_pitch: np.ndarray
    trees: np.ndarray
    poles: np.ndarray
    materials: Materials
    gain: np.ndarray


@dataclass(frozen=True)
class Agents:
    """Cars and people, each standing on one ground row.

    Attributes:
        kind: int64 [A] CAR or PERSON.
        bottom: int64 [A] the ground row the agent stands on (sets its depth and size).
        size: int64 [A, 2] width and height in pixels.
        depth: float32 [A] metres.
        material: int64 [A] body (car) or shirt (person) material.
        x: float32 [S, A] world column of the agent's centre at each simulation step.
        velocity: float32 [S, A] columns per step applied after step s.
        facing: int64 [S, A] +1 right, -1 left: the direction of the last motion.
    """

    kind: np.ndarray
    bottom: np.ndarray
    size: np.ndarray
    depth: np.ndarray
    material: np.ndarray
    x: np.ndarray
    velocity: np.ndarray
    facing: np.ndarray


# Fixed materials shared by every clip; building, car and shirt materials follow.
(
    MATERIAL_SKY,
    MATERIAL_ROAD,
    MATERIAL_LANE,
    MATERIAL_SIDEWALK,
    MATERIAL_GRASS,
    MATERIAL_CANOPY,
    MATERIAL_TRUNK,
    MATERIAL_POLE,
    MATERIAL_WINDOW,
    MATERIAL_WHEEL,
    MATERIAL_CAR_WINDOW,
    MATERIAL_SKIN,
    MATERIAL_TROUSERS,
) = range(13)
NUM_FIXED_MATERIALS = 13

SKY_GRADIENT = np.array([45.0, 35.0, 10.0], np.float32)  # added at the horizon: hazier, lighter sky
SENSOR_NOISE = 5.0  # std of per-pixel noise in 8-bit units
INVALID_DEPTH_FRACTION = 0.02  # depth pixels dropped at random, like sparse LiDAR returns


def world_hash(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Integer lattice coordinates -> uniform-looking values in [-0.5, 0.5).

    A static texture anchored to world coordinates moves exactly with the camera
    pan, so it is a cue a model can track, unlike per-frame noise.
    """
    h = (u.astype(np.int64) * 374761393 + v.astype(np.int64) * 668265263) & 0xFFFFFFFF
    h = ((h ^ (h >> 13)) * 1274126177) & 0xFFFFFFFF
    return ((h ^ (h >> 16)) & 0xFF).astype(np.float32) / 256.0 - 0.5


def draw_background(scene: Scene, step: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Material, depth and world-column maps of the static scene at one step."""
    rows = np.arange(scene.height)[:, None]
    camera = scene.pan_speed * step
    u = np.floor(camera + np.arange(scene.width)).astype(np.int64)[None, :]

    building = np.searchsorted(scene.building_edges, u[0], side="right") - 1
    top = scene.building_top[building][None, :]
    left = scene.building_edges[building][None, :]
    pitch = scene.window_pitch[building]
    in_building = (rows >= top) & (rows < scene.horizon)
    # Windows: a grid anchored to each building's left edge and top, leaving a margin.
    col_phase = (u - left) % pitch[None, :, 0]
    row_phase = (rows - top) % pitch[None, :, 1]
    window = (
        in_building
        & (col_phase >= 2)
        & (col_phase < pitch[None, :, 0] - 1)
        & (row_phase >= 2)
        & (row_phase < pitch[None, :, 1] - 1)
        & (rows < scene.horizon - 3)
    )

    material = np.full((scene.height, scene.width), MATERIAL_SKY, np.uint8)
    material[in_building] = np.broadcast_to(scene.building_material[building][None, :], material.shape)[in_building]
    material[window] = MATERIAL_WINDOW
    ground = np.select(
        [rows < scene.far_walk_end, rows < scene.road_end, rows < scene.near_walk_end],
        [MATERIAL_SIDEWALK, MATERIAL_ROAD, MATERIAL_SIDEWALK],
        MATERIAL_GRASS,
    )
    material[scene.horizon :] = np.broadcast_to(ground, material.shape)[scene.horizon :]
    dash = ((u[0] // 6) % 3 != 0)  # dashed line anchored to the world: 12 px on, 6 px off
    material[scene.lane_row, dash] = MATERIAL_LANE

    depth = np.where(in_building, scene.building_depth[building][None, :], scene.ground_depth[:, None]).astype(np.float32)

    for column, radius, tree_depth in scene.trees:
        centre = (int(round(column - camera)), scene.horizon - int(radius) - 2)
        trunk = (centre[0] - 1, centre[1], centre[0] + 1, scene.far_walk_end - 1)
        for target, trunk_value, canopy_value in ((material, MATERIAL_TRUNK, MATERIAL_CANOPY), (depth, tree_depth, tree_depth)):
            cv2.rectangle(target, trunk[:2], trunk[2:], float(trunk_value), thickness=-1)
            cv2.ellipse(target, centre, (int(radius), int(radius * 0.8)), 0, 0, 360, float(canopy_value), thickness=-1)
    for column, top_row, pole_depth in scene.poles:
        x = int(round(column - camera))
        cv2.line(material, (x, int(top_row)), (x, scene.far_walk_end - 1), MATERIAL_POLE, thickness=1)
        cv2.line(depth, (x, int(top_row)), (x, scene.far_walk_end - 1), float(pole_depth), thickness=1)
    return material, depth, u


def draw_car(material: np.ndarray, depth: np.ndarray, x: int, bottom: int, size, body: int, facing: int, d: float) -> None:
    """A side view: body, a cabin set towards the back, windows and two wheels."""
    width, height = int(size[0]), int(size[1])
    left, right = x - width // 2, x + width // 2
    body_top = bottom - int(0.6 * height)
    top = bottom - height
    # The cabin sits behind the centre, so a car's heading is visible in one frame.
    cabin_centre = x - facing * width // 8
    cabin_left, cabin_right = cabin_centre - int(0.3 * width), cabin_centre + int(0.3 * width)
    wheel_radius = max(2, height // 5)
    wheels = [(left + width // 5, bottom - wheel_radius), (right - width // 5, bottom - wheel_radius)]
    for target, values in ((material, (body, MATERIAL_CAR_WINDOW, MATERIAL_WHEEL)), (depth, (d, d, d))):
        cv2.rectangle(target, (left, body_top), (right, bottom - wheel_radius), float(values[0]), thickness=-1)
        cabin = np.array([[cabin_left - height // 4, body_top], [cabin_left, top], [cabin_right, top], [cabin_right + height // 4, body_top]], np.int32)
        cv2.fillConvexPoly(target, cabin, float(values[0]))
        inset = max(1, height // 8)
        cv2.rectangle(target, (cabin_left + inset, top + inset), (cabin_right - inset, body_top - 1), float(values[1]), thickness=-1)
        for centre in wheels:
            cv2.circle(target, centre, wheel_radius, float(values[2]), thickness=-1)


def draw_person(material: np.ndarray, depth: np.ndarray, x: int, bottom: int, size, shirt: int, stride_phase: int, d: float) -> None:
    """Head, torso and two legs whose spread alternates while walking."""
    width, height = int(size[0]), int(size[1])
    head_radius = max(2, height // 9)
    head_centre = (x, bottom - height + head_radius)
    torso_top, hip = head_centre[1] + head_radius, bottom - int(0.45 * height)
    spread = (width // 3) * stride_phase
    leg = max(1, width // 5)
    for target, values in ((material, (MATERIAL_SKIN, shirt, MATERIAL_TROUSERS)), (depth, (d, d, d))):
        cv2.circle(target, head_centre, head_radius, float(values[0]), thickness=-1)
        cv2.rectangle(target, (x - width // 2, torso_top), (x + width // 2, hip), float(values[1]), thickness=-1)
        for foot in (x - spread - leg // 2, x + spread - leg // 2):
            leg_poly = np.array([[x - leg, hip], [x + leg, hip], [foot + leg, bottom], [foot - leg, bottom]], np.int32)
            cv2.fillConvexPoly(target, leg_poly, float(values[2]))


def draw_agents(material: np.ndarray, depth: np.ndarray, agents: Agents, step: int, camera: float) -> None:
    """Paints the agents far to near, so nearer ones occlude farther ones."""
    for a in np.argsort(agents.bottom, kind="stable"):
        x = int(round(float(agents.x[step, a]) - camera))
        if agents.kind[a] == CAR:
            draw_car(material, depth, x, int(agents.bottom[a]), agents.size[a], int(agents.material[a]), int(agents.facing[step, a]), float(agents.depth[a]))
        else:
            walking = agents.velocity[step, a] != 0 or (step > 0 and agents.velocity[step - 1, a] != 0)
            phase = (1 if (int(agents.x[step, a]) // 4) % 2 else -1) if walking else 0
            draw_person(material, depth, x, int(agents.bottom[a]), agents.size[a], int(agents.material[a]), phase, float(agents.depth[a]))


def render_frame(scene: Scene, agents: Agents, step: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One frame of the world at a simulation step.

    Args:
        scene: static layout.
        agents: the agents and their trajectories (``step`` must be simulated).
        step: simulation step (the camera has panned ``pan_speed * step`` columns).
        rng: this frame's own generator, for sensor noise and depth dropout.

    Returns:
        (rgb uint8 [H, W, 3], seg int64 [H, W] with 255 = void, depth float32 [H, W] with 0 = invalid).
    """
    material, depth, u = draw_background(scene, step)
    draw_agents(material, depth, agents, step, scene.pan_speed * step)

    mats = scene.materials
    rows = np.arange(scene.height)[:, None]
    shade = world_hash(u, rows) * mats.texture[material]
    sky = material == MATERIAL_SKY
    rgb = mats.colour[material]
    rgb += shade[..., None]
    rgb += (sky * (rows / max(scene.horizon, 1)).astype(np.float32))[..., None] * SKY_GRADIENT
    rgb *= scene.gain
    rgb += rng.standard_normal(rgb.shape, dtype=np.float32) * np.float32(SENSOR_NOISE)
    rgb = np.clip(rgb + 0.5, 0, 255).astype(np.uint8)

    seg = mats.label[material].astype(np.int64)
    depth[sky] = DEPTH_INVALID
    depth[rng.random(depth.shape) < INVALID_DEPTH_FRACTION] = DEPTH_INVALID
    return rgb, seg, depth

