"""Synthetic road scenes from a car's camera: image, semantic mask, depth, object boxes, scene labels.

Each scene is rendered from a small 3-D world with a pinhole camera 1.5 m above a flat
ground plane, so every label follows from the same geometry:

- the road is a band of the ground (2 or 3 lanes of 3.5 m, maybe curving), with dashed lane
  lines and solid edge lines, between sidewalks; beyond them grass, and facades along both
  sides: buildings (with windows) or tree lines, or open ground;
- cars drive in the lanes (seen from behind in the camera's direction, from the front in
  the oncoming lane) and pedestrians stand on the sidewalks, at distances from 2.5 to 120 m:
  their size and the row of their feet follow from the distance, and a z-buffer makes
  nearer things hide farther ones;
- light is day, dusk or night (dimmer and warmer, then dark with headlights, tail lights and
  lit windows); weather is clear, fog (contrast falls with depth: colours fade towards the fog
  colour as exp(-depth / visibility)) or rain (darker, with streaks);
- the depth map is the camera-axis distance of each pixel (ground from its row, facades
  from their plane, objects at their distance), 0 for the sky and beyond :data:`MAX_DEPTH`;
- boxes are the extent of each object's visible pixels (what occlusion and the image edge
  leave of it), for objects with at least :data:`MIN_BOX_PIXELS` visible pixels.

Scenes come in sequences of :data:`FRAMES_PER_SEQUENCE` frames a few metres apart along one
street (same layout, weather and light; cars move), so split by ``sequence_id``. Only
NumPy and PIL are needed; the same seed writes the same bytes.

Output folder::

    images/000000.png  RGB
    masks/000000.png   8-bit grayscale, class index per pixel (:data:`CLASSES`)
    depth/000000.png   16-bit grayscale, depth in metres * DEPTH_SCALE (256), 0 = no depth
    manifest.jsonl     {"image", "mask", "depth", "boxes": [[x_min, y_min, x_max, y_max, class], ...]
                        in pixels, "weather", "time_of_day", "sequence_id", "frame", "corruption"}

``corrupt`` makes a fraction of the items bad on purpose, to see the rejects: a truncated
or garbage image file, a mask with an out-of-range class, a box outside the image, or a
manifest row whose image file does not exist (``corruption`` names which, else null).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mtl_tf.data.synth import SYNTHESIZERS

CLASSES = ("sky", "road", "lane_marking", "sidewalk", "building", "vegetation", "car", "pedestrian")
SKY, ROAD, LANE, SIDEWALK, BUILDING, VEGETATION, CAR, PEDESTRIAN = range(len(CLASSES))
OBJECT_CLASSES = ("car", "pedestrian")
WEATHER = ("clear", "fog", "rain")
TIMES_OF_DAY = ("day", "dusk", "night")
CORRUPTIONS = ("truncated_image", "mask_out_of_range", "box_outside_image", "missing_image", "garbage_image")
DEPTH_SCALE = 256.0
MAX_DEPTH = 200.0
CAMERA_HEIGHT = 1.5
LANE_WIDTH = 3.5
FRAMES_PER_SEQUENCE = 8
FRAME_STEP = 3.0  # metres the camera moves between frames
MIN_BOX_PIXELS = 6
HEIGHT, WIDTH = 96, 128
_VIEW = 160.0  # metres ahead that objects are drawn

# Albedo (0-1) of the surfaces; each scene jitters them.
_COLOURS = {
    ROAD: (0.33, 0.33, 0.35), LANE: (0.92, 0.92, 0.88), SIDEWALK: (0.62, 0.60, 0.56),
    VEGETATION: (0.22, 0.45, 0.18), "grass": (0.30, 0.50, 0.20), "glass": (0.16, 0.20, 0.26),
    "tyre": (0.06, 0.06, 0.06), "tail": (0.75, 0.05, 0.05), "head": (0.95, 0.95, 0.85),
    "skin": (0.85, 0.65, 0.50),
}
_BUILDING_COLOURS = ((0.70, 0.62, 0.52), (0.55, 0.45, 0.40), (0.75, 0.74, 0.70), (0.45, 0.47, 0.52),
                     (0.80, 0.70, 0.55), (0.60, 0.30, 0.25))
_CAR_COLOURS = ((0.80, 0.80, 0.82), (0.10, 0.10, 0.12), (0.60, 0.08, 0.08), (0.12, 0.22, 0.55),
                (0.50, 0.50, 0.52), (0.85, 0.85, 0.85), (0.20, 0.35, 0.25), (0.85, 0.65, 0.15))
_CLOTHES = ((0.15, 0.15, 0.35), (0.55, 0.10, 0.10), (0.20, 0.20, 0.20), (0.80, 0.75, 0.60), (0.10, 0.40, 0.30),
            (0.70, 0.70, 0.75), (0.45, 0.30, 0.20))
# Light colour and strength, sky colours at the top and at the horizon, fog colour, per time of day.
_LIGHT = {
    "day": {"light": (1.0, 1.0, 1.0), "top": (0.30, 0.52, 0.85), "horizon": (0.72, 0.82, 0.94),
            "fog": (0.78, 0.79, 0.81)},
    "dusk": {"light": (0.85, 0.62, 0.50), "top": (0.22, 0.20, 0.45), "horizon": (0.98, 0.58, 0.35),
             "fog": (0.62, 0.52, 0.50)},
    "night": {"light": (0.16, 0.17, 0.24), "top": (0.02, 0.03, 0.08), "horizon": (0.08, 0.08, 0.14),
              "fog": (0.13, 0.13, 0.16)},
}


@dataclass
class Segment:
    """A stretch of one side of the street: ``z0``..``z1`` metres along it."""

    z0: float
    z1: float
    kind: str  # building | trees | open
    height: float
    setback: float
    colour: np.ndarray
    lit: float  # share of lit windows at night


@dataclass
class Agent:
    """A car or pedestrian: metres from the road centre (``lateral``) and along the street (``z``)."""

    kind: str
    lateral: float
    z: float
    speed: float  # metres per frame along the street
    width: float
    height: float
    colour: np.ndarray
    second: np.ndarray  # pedestrians: trousers
    oncoming: bool = False
    stride: float = 0.0


@dataclass
class Street:
    """One sequence's world: layout, light and weather, shared by its frames."""

    weather: str
    time: str
    lanes: int
    sidewalk: float
    curvature: float
    camera_lane: int
    focal: float  # in image widths
    horizon: float  # row of the horizon, in image heights
    visibility: float
    rain: int
    sides: dict[int, list[Segment]]
    agents: list[Agent]
    tint: np.ndarray
    seed: int
    extra: dict = field(default_factory=dict)

    @property
    def half(self) -> float:
        return self.lanes * LANE_WIDTH / 2

    @property
    def camera_x(self) -> float:
        """The camera's lateral position from the road centre (in a lane's middle)."""
        return -self.half + (self.camera_lane + 0.5) * LANE_WIDTH


@dataclass
class Scene:
    """One rendered frame."""

    image: np.ndarray  # uint8 (H, W, 3)
    mask: np.ndarray  # uint8 (H, W) class indices
    depth: np.ndarray  # float32 (H, W) metres, 0 = none
    boxes: list[list]  # [x_min, y_min, x_max, y_max, class name] in pixels
    weather: str
    time_of_day: str
    sequence_id: str
    frame: int


def street(rng: np.random.Generator) -> Street:
    """A random street (layout, agents, light and weather) for one sequence."""
    weather = str(rng.choice(WEATHER, p=[0.5, 0.25, 0.25]))
    time = str(rng.choice(TIMES_OF_DAY, p=[0.5, 0.25, 0.25]))
    lanes = int(rng.choice([2, 3], p=[0.6, 0.4]))
    length = FRAMES_PER_SEQUENCE * FRAME_STEP + _VIEW + 40
    sides = {side: _segments(rng, length) for side in (-1, 1)}
    s = Street(weather=weather, time=time, lanes=lanes, sidewalk=float(rng.uniform(2.0, 3.5)),
               curvature=float(rng.choice([0.0, 1.0], p=[0.4, 0.6]) * rng.uniform(-0.0025, 0.0025)),
               camera_lane=lanes - 1, focal=float(rng.uniform(0.8, 1.0)), horizon=float(rng.uniform(0.38, 0.46)),
               visibility=float(rng.uniform(18, 60)), rain=int(rng.integers(60, 160)), sides=sides, agents=[],
               tint=rng.uniform(0.9, 1.1, 3), seed=int(rng.integers(2**31)))
    s.agents = _cars(rng, s) + _pedestrians(rng, s)
    return s


def _segments(rng: np.random.Generator, length: float) -> list[Segment]:
    segments, z = [], -10.0
    while z < length:
        span = float(rng.uniform(8, 35))
        kind = str(rng.choice(["building", "trees", "open"], p=[0.6, 0.3, 0.1]))
        height = float(rng.uniform(5, 24) if kind == "building" else rng.uniform(4, 11))
        setback = float(rng.uniform(0, 3) if kind == "building" else rng.uniform(1, 7))
        colour = np.array(_BUILDING_COLOURS[rng.integers(len(_BUILDING_COLOURS))]) * rng.uniform(0.85, 1.15, 3)
        segments.append(Segment(z, z + span, kind, height, setback, colour, float(rng.uniform(0.1, 0.6))))
        z += span
    return segments


def _cars(rng: np.random.Generator, s: Street) -> list[Agent]:
    cars = []
    for _ in range(int(rng.poisson(4.0))):
        lane = int(rng.integers(s.lanes))
        oncoming = lane == 0  # the left lane comes towards the camera
        van = rng.random() < 0.2
        cars.append(Agent(
            kind="car", lateral=-s.half + (lane + 0.5) * LANE_WIDTH + float(rng.normal(0, 0.2)),
            z=float(rng.uniform(6, 110)), speed=float(rng.uniform(-6, -3) if oncoming else rng.uniform(-1.5, 1.5)),
            width=float(rng.uniform(1.95, 2.2) if van else rng.uniform(1.65, 1.95)),
            height=float(rng.uniform(1.9, 2.6) if van else rng.uniform(1.35, 1.6)),
            colour=np.array(_CAR_COLOURS[rng.integers(len(_CAR_COLOURS))]), second=np.zeros(3), oncoming=oncoming))
    return cars


def _pedestrians(rng: np.random.Generator, s: Street) -> list[Agent]:
    people = []
    for _ in range(int(rng.poisson(4.0))):
        side = float(rng.choice([-1.0, 1.0]))
        people.append(Agent(
            kind="pedestrian", lateral=side * (s.half + float(rng.uniform(0.4, s.sidewalk - 0.3))),
            z=float(rng.uniform(3, 70)), speed=float(rng.uniform(-0.4, 0.4)), width=float(rng.uniform(0.45, 0.6)),
            height=float(rng.uniform(1.5, 1.95)), colour=np.array(_CLOTHES[rng.integers(len(_CLOTHES))]),
            second=np.array(_CLOTHES[rng.integers(len(_CLOTHES))]), stride=float(rng.uniform(0, 0.35))))
    return people


class _Canvas:
    """The z-buffered layers of one frame: depth, class, albedo, emitted light, object id."""

    def __init__(self, height: int, width: int):
        self.depth = np.full((height, width), np.inf)
        self.mask = np.full((height, width), SKY, np.uint8)
        self.albedo = np.zeros((height, width, 3))
        self.emit = np.zeros((height, width, 3))
        self.instance = np.full((height, width), -1, np.int32)

    def paint(self, where: np.ndarray, depth, cls: int, albedo, instance: int = -1,
              region: tuple[slice, slice] = (slice(None), slice(None))) -> np.ndarray:
        """Writes the pixels of ``where`` (within ``region``) nearer than what is there; returns them."""
        depths = self.depth[region]
        depth = np.broadcast_to(depth, depths.shape)
        where = where & (depth < depths)
        depths[where] = depth[where]
        self.mask[region][where] = cls
        self.albedo[region][where] = albedo[where] if np.ndim(albedo) == 3 else albedo
        self.emit[region][where] = 0.0
        self.instance[region][where] = instance
        return where


def render(s: Street, frame: int, height: int = HEIGHT, width: int = WIDTH, sequence_id: str = "") -> Scene:
    """Renders frame ``frame`` of street ``s`` at ``height`` x ``width``."""
    rng = np.random.default_rng([s.seed, frame])
    f, cx = s.focal * width, width / 2
    h0 = s.horizon * height + float(rng.normal(0, 0.01 * height))
    u = np.arange(width)[None, :] + 0.5
    v = np.arange(height)[:, None] + 0.5
    z_cam = frame * FRAME_STEP
    canvas = _Canvas(height, width)
    grain = _grain(rng, height, width)
    _ground(canvas, s, u, v, f, cx, h0, z_cam, grain)
    for side in (-1, 1):
        _facades(canvas, s, side, u, v, f, cx, h0, z_cam, grain)
    boxes = _agents(canvas, s, frame, u, v, f, cx, h0, z_cam)
    image = _light(canvas, s, v, h0, rng, grain)
    depth = np.where(np.isfinite(canvas.depth) & (canvas.depth <= MAX_DEPTH), canvas.depth, 0.0).astype(np.float32)
    return Scene(image, canvas.mask.copy(), depth, boxes, s.weather, s.time, sequence_id, frame)


def _grain(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A smooth random field around 1 (surface texture)."""
    from PIL import Image

    coarse = rng.uniform(0.8, 1.2, (max(2, height // 6), max(2, width // 6))).astype(np.float32)
    smooth = np.asarray(Image.fromarray(coarse, "F").resize((width, height), Image.BILINEAR))
    return smooth * rng.uniform(0.93, 1.07, (height, width))


def _road_centre(s: Street, z: np.ndarray) -> np.ndarray:
    """The road centre's lateral position relative to the camera at distance ``z``."""
    return -s.camera_x + s.curvature * z * z


def _ground(canvas: _Canvas, s: Street, u, v, f, cx, h0, z_cam, grain) -> None:
    below = np.broadcast_to(v > h0 + 0.05, canvas.depth.shape)
    z = np.where(below, f * CAMERA_HEIGHT / np.maximum(v - h0, 1e-3), np.inf) * np.ones_like(u)
    zc = np.minimum(z, 1e4)
    lateral = (u - cx) * zc / f - _road_centre(s, zc)  # from the road centre
    along = zc + z_cam
    half = s.half
    road = np.abs(lateral) <= half
    dashes = (along % 9.0) < 3.5
    marking = np.zeros_like(road)
    for i in range(1, s.lanes):
        marking |= (np.abs(lateral - (-half + i * LANE_WIDTH)) < 0.08) & dashes
    marking |= (np.abs(np.abs(lateral) - (half - 0.25)) < 0.07)
    sidewalk = ~road & (np.abs(lateral) <= half + s.sidewalk)
    texture = grain[:, :, None]
    canvas.paint(below & road & ~marking, z, ROAD, np.asarray(_COLOURS[ROAD]) * texture)
    canvas.paint(below & road & marking, z, LANE, np.asarray(_COLOURS[LANE]) * texture)
    slabs = 0.9 + 0.1 * ((along % 1.5) > 0.08)
    canvas.paint(below & sidewalk, z, SIDEWALK, np.asarray(_COLOURS[SIDEWALK]) * (texture * slabs[:, :, None]))
    canvas.paint(below & ~road & ~sidewalk, z, VEGETATION, np.asarray(_COLOURS["grass"]) * texture)


def _plane_depth(s: Street, offset: float, u, f, cx) -> np.ndarray:
    """Per column, the distance where the camera ray meets the vertical plane ``offset`` metres
    (signed) from the road centre; inf where it does not (ahead)."""
    a = (u - cx) / f  # lateral metres per metre of distance along the ray
    c = offset - s.camera_x
    k = s.curvature
    with np.errstate(divide="ignore", invalid="ignore"):
        if abs(k) < 1e-9:
            z = c / a
        else:  # k z^2 - a z + c = 0: the nearest positive root
            root = np.sqrt(np.maximum(a * a - 4 * k * c, 0.0))
            roots = np.stack([(a - root) / (2 * k), (a + root) / (2 * k)])
            roots = np.where((roots > 0) & (a * a - 4 * k * c >= 0), roots, np.inf)
            z = roots.min(axis=0)
    return np.where(np.isfinite(z) & (z > 0.5), z, np.inf)


def _facades(canvas: _Canvas, s: Street, side: int, u, v, f, cx, h0, z_cam, grain) -> None:
    for seg in s.sides[side]:
        if seg.kind == "open" or seg.z1 < z_cam or seg.z0 > z_cam + _VIEW:
            continue
        z = _plane_depth(s, side * (s.half + s.sidewalk + seg.setback), u, f, cx)[0]
        inside = np.isfinite(z) & (z + z_cam >= seg.z0) & (z + z_cam < seg.z1)
        columns = np.nonzero(inside)[0]
        if not len(columns):
            continue
        region = (slice(None), slice(int(columns[0]), int(columns[-1]) + 1))
        inside, z = inside[region[1]][None, :], np.where(inside, z, 1.0)[region[1]][None, :]
        along = z + z_cam
        top = seg.height
        if seg.kind == "trees":
            top = seg.height * (0.8 + 0.2 * np.abs(np.sin(along * 0.9 + seg.z0)) + 0.08 * np.sin(along * 3.1))
        up = CAMERA_HEIGHT - (v - h0) * z / f  # metres above the ground at each pixel
        where = inside & (up >= 0) & (up <= top)
        texture = grain[region]
        if seg.kind == "trees":
            leaves = texture * (0.8 + 0.4 * ((up * 2.3 + along * 1.7) % 1.0))
            canvas.paint(where, z, VEGETATION, np.asarray(_COLOURS[VEGETATION]) * leaves[:, :, None], region=region)
            continue
        windows = ((along % 4.0) > 1.2) & ((along % 4.0) < 3.0) & ((up % 3.2) > 1.1) & ((up % 3.2) < 2.5) & (
            up > 2.5) & (up < seg.height - 0.6)
        albedo = np.where(windows[:, :, None], np.asarray(_COLOURS["glass"]), seg.colour) * texture[:, :, None]
        drawn = canvas.paint(where, z, BUILDING, albedo, region=region)
        if s.time != "day":
            lit = windows & drawn & (np.sin(np.floor(along / 4.0) * 12.9898 + np.floor(up / 3.2) * 78.233) % 1.0
                                     < seg.lit)
            canvas.emit[region][lit] = (0.95, 0.80, 0.45)


def _agents(canvas: _Canvas, s: Street, frame: int, u, v, f, cx, h0, z_cam) -> list[list]:
    height, width = canvas.depth.shape
    placed = []
    for i, agent in enumerate(s.agents):
        z = agent.z + agent.speed * frame - z_cam
        if 2.5 < z < _VIEW:
            placed.append((z, i, agent))
    for z, i, agent in sorted(placed, reverse=True):  # far to near (the z-buffer decides anyway)
        centre = cx + f * (_road_centre(s, z) + agent.lateral) / z
        half_w = f * agent.width / 2 / z
        bottom = h0 + f * CAMERA_HEIGHT / z
        tall = f * agent.height / z
        rows = slice(max(0, int(bottom - tall) - 1), min(height, int(bottom + 0.06 * tall) + 2))
        cols = slice(max(0, int(centre - 1.06 * half_w) - 1), min(width, int(centre + 1.06 * half_w) + 2))
        if rows.start >= rows.stop or cols.start >= cols.stop:
            continue
        a = (u[:, cols] - centre) / half_w  # -1..1 across the object
        b = (bottom - v[rows]) / tall  # 0 at the feet, 1 at the top
        if agent.kind == "car":
            _car(canvas, agent, a, b, z, i, s.time, (rows, cols))
        else:
            _pedestrian(canvas, agent, a, b, z, i, (rows, cols))
    boxes = []
    for _, i, agent in sorted(placed, key=lambda p: p[1]):
        ys, xs = np.nonzero(canvas.instance == i)
        if len(ys) >= MIN_BOX_PIXELS:
            boxes.append([int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1, agent.kind])
    return boxes


def _car(canvas: _Canvas, car: Agent, a, b, z: float, index: int, time: str, region) -> None:
    shape = (len(b), a.shape[1])
    roof = b > 0.62
    body = (np.abs(a) <= 1.0) & (b >= 0.12) & (b <= 1.0) & (~roof | (np.abs(a) <= 0.88 - (b - 0.62) * 0.6))
    wheels = (b >= 0.0) & (b < 0.2) & (np.abs(a) > 0.55) & (np.abs(a) < 0.95)
    shadow = ((b >= -0.05) & (b < 0.12) & (np.abs(a) < 1.05) & np.isin(canvas.mask[region], (ROAD, LANE))
              & (canvas.depth[region] > z))
    canvas.albedo[region][shadow] *= 0.45
    glass = (b > 0.66) & (b < 0.93) & (np.abs(a) < 0.75)
    lamp = (b > 0.42) & (b < 0.56) & (np.abs(a) > 0.68) & (np.abs(a) < 0.95)
    albedo = np.where(glass[:, :, None], np.asarray(_COLOURS["glass"]), car.colour)
    albedo = np.where(lamp[:, :, None], np.asarray(_COLOURS["head" if car.oncoming else "tail"]), albedo)
    albedo = np.where(wheels[:, :, None] & ~body[:, :, None], np.asarray(_COLOURS["tyre"]), albedo)
    albedo = albedo * np.ones(shape + (1,))
    drawn = canvas.paint(body | wheels, z, CAR, albedo, index, region)
    if time != "day":
        canvas.emit[region][drawn & lamp] = (1.0, 1.0, 0.9) if car.oncoming else (0.9, 0.05, 0.02)


def _pedestrian(canvas: _Canvas, person: Agent, a, b, z: float, index: int, region) -> None:
    shape = (len(b), a.shape[1])
    head = (a / 0.42) ** 2 + ((b - 0.915) / 0.075) ** 2 <= 1.0
    torso = (b >= 0.48) & (b <= 0.84) & (np.abs(a) <= 0.78)
    arms = (b >= 0.5) & (b <= 0.82) & (np.abs(a) > 0.78) & (np.abs(a) <= 1.0)
    swing = person.stride * np.clip(0.5 - b, 0, None)
    legs = (b >= 0) & (b < 0.5) & ((np.abs(a - 0.38 - swing) < 0.27) | (np.abs(a + 0.38 + swing) < 0.27))
    albedo = np.where((head | arms)[:, :, None], np.asarray(_COLOURS["skin"]) * 0.9, person.colour)
    albedo = np.where(legs[:, :, None], person.second, albedo) * np.ones(shape + (1,))
    canvas.paint(head | torso | arms | legs, z, PEDESTRIAN, albedo, index, region)


def _light(canvas: _Canvas, s: Street, v, h0, rng: np.random.Generator, grain) -> np.ndarray:
    """Light, sky, fog, rain and sensor noise -> the uint8 image."""
    look = _LIGHT[s.time]
    depth = canvas.depth
    light = np.asarray(look["light"]) * s.tint
    shade = np.broadcast_to(light, canvas.albedo.shape).copy()
    if s.time == "night":  # the camera car's headlights light the road ahead
        near = np.where(np.isfinite(depth), 2.2 * np.exp(-depth / 14.0), 0.0)
        shade = shade + near[:, :, None] * np.asarray((0.95, 0.9, 0.75))
    colour = canvas.albedo * shade + canvas.emit
    t = np.clip(v / max(h0, 1.0), 0, 1)[:, :, None] * np.ones_like(colour)
    sky = np.asarray(look["top"]) * (1 - t) + np.asarray(look["horizon"]) * t
    if s.time == "day" and s.weather == "clear":
        sky = sky * (0.94 + 0.06 * grain[:, :, None])
    is_sky = ~np.isfinite(depth)
    colour = np.where(is_sky[:, :, None], sky, colour)
    if s.weather == "fog":
        keep = np.where(is_sky, 0.0, np.exp(-np.where(is_sky, 0.0, depth) / s.visibility))[:, :, None]
        colour = colour * keep + np.asarray(look["fog"]) * (1 - keep)
    elif s.weather == "rain":
        colour = colour * 0.8
        colour = _rain(colour, s, rng)
    colour = colour + rng.normal(0, 0.012, colour.shape)
    return np.clip(colour * 255 + 0.5, 0, 255).astype(np.uint8)


def _rain(colour: np.ndarray, s: Street, rng: np.random.Generator) -> np.ndarray:
    from PIL import Image, ImageDraw

    height, width = colour.shape[:2]
    streaks = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(streaks)
    slant = rng.uniform(-0.35, 0.1)
    for _ in range(int(s.rain * width * height / (96 * 128))):
        x, y = rng.uniform(-5, width + 5), rng.uniform(-10, height)
        length = rng.uniform(0.04, 0.1) * height
        draw.line([(x, y), (x + slant * length, y + length)], fill=int(rng.integers(60, 140)), width=1)
    alpha = np.asarray(streaks, np.float64)[:, :, None] / 255
    return colour * (1 - alpha) + 0.8 * alpha


@SYNTHESIZERS.register("driving_perception")
class DrivingPerception:
    """Road scenes with semantic masks, depth maps, object boxes and weather / time-of-day labels."""

    writes = "images"
    classes = CLASSES
    object_classes = OBJECT_CLASSES
    depth_scale = DEPTH_SCALE

    def scenes(self, rows: int, rng: np.random.Generator, height: int = HEIGHT, width: int = WIDTH):
        """The ``rows`` scenes, in order (sequences of :data:`FRAMES_PER_SEQUENCE` frames)."""
        for sequence in range(math.ceil(rows / FRAMES_PER_SEQUENCE)):
            s = street(np.random.default_rng([int(rng.integers(2**31)), sequence]))
            for frame in range(min(FRAMES_PER_SEQUENCE, rows - sequence * FRAMES_PER_SEQUENCE)):
                yield render(s, frame, height, width, f"seq{sequence:05d}")

    def write(self, rows: int, out_dir: str | Path, rng: np.random.Generator, height: int = HEIGHT,
              width: int = WIDTH, corrupt: float = 0.0) -> Path:
        """Writes ``rows`` scenes and ``manifest.jsonl`` under ``out_dir``; returns the manifest's path."""
        out = Path(out_dir)
        for folder in ("images", "masks", "depth"):
            (out / folder).mkdir(parents=True, exist_ok=True)
        bad = _corruptions(rows, corrupt, np.random.default_rng(rng.integers(2**31)))
        manifest = out / "manifest.jsonl"
        with manifest.open("w") as handle:
            for index, scene in enumerate(self.scenes(rows, rng, height, width)):
                row = _write_scene(out, index, scene, bad.get(index))
                handle.write(json.dumps(row) + "\n")
        return manifest


def _corruptions(rows: int, fraction: float, rng: np.random.Generator) -> dict[int, str]:
    count = int(round(rows * fraction))
    chosen = sorted(rng.choice(rows, size=count, replace=False).tolist()) if count else []
    return {index: CORRUPTIONS[i % len(CORRUPTIONS)] for i, index in enumerate(chosen)}


def _write_scene(out: Path, index: int, scene: Scene, corruption: str | None) -> dict:
    from PIL import Image

    name = f"{index:06d}.png"
    mask, boxes = scene.mask, [list(box) for box in scene.boxes]
    if corruption == "mask_out_of_range":
        mask = mask.copy()
        mask[:2, :2] = 200
    if corruption == "box_outside_image":
        width = scene.image.shape[1]
        boxes.append([width + 4, 2, width + 20, 12, "car"])
    image_path = f"images/{name}" if corruption != "missing_image" else f"images/missing_{name}"
    if corruption != "missing_image":
        Image.fromarray(scene.image).save(out / image_path, compress_level=1)
        if corruption == "truncated_image":
            data = (out / image_path).read_bytes()
            (out / image_path).write_bytes(data[: len(data) // 2])
        elif corruption == "garbage_image":
            (out / image_path).write_bytes(bytes(range(256)) * 4)
    Image.fromarray(mask, "L").save(out / "masks" / name, compress_level=1)
    Image.fromarray(np.round(scene.depth * DEPTH_SCALE).astype(np.uint16)).save(out / "depth" / name, compress_level=1)
    return {"image": image_path, "mask": f"masks/{name}", "depth": f"depth/{name}", "boxes": boxes,
            "weather": scene.weather, "time_of_day": scene.time_of_day, "sequence_id": scene.sequence_id,
            "frame": scene.frame, "corruption": corruption}
