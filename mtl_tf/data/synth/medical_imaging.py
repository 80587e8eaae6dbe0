"""Synthetic chest radiographs: grayscale scans with organ and lesion masks and the findings they imply.

Each scan is a frontal (PA) chest film drawn from a small anatomical model, in radiological
convention (the patient's left is on the image's right; air is dark, soft tissue and bone
bright):

- the body is a soft-tissue oval in dark air, with a bright spine and mediastinum down the
  middle, the shoulders and clavicles at the top, ribs as faint bright arcs over the thorax
  and the abdomen below the diaphragm;
- two lungs, dark and air-filled with faint vessels fanning out from the hila, each an oval
  cut by the mediastinum and by its dome-shaped hemidiaphragm (the right one higher, over the
  liver), so the costophrenic angles are deep and lateral;
- the heart, a bright oval tilted to the patient's left, in front of the lower left lung
  (where they overlap the pixel is heart);
- lesions placed where they occur: **nodules**, small bright round blobs well inside a
  lung; **effusion**, fluid filling a lung base up to a meniscus that rises towards the
  chest wall, blunting the costophrenic angle; **cardiomegaly**, an enlarged heart
  (cardiothoracic ratio above 0.5).

Findings are read back from the drawn masks at the stored size, so image-level and pixel-level
labels agree exactly: ``nodule`` and ``effusion`` when the lesion mask holds that class,
``cardiomegaly`` when the heart's width over the thorax's (between the lungs' outer edges) is
above :data:`CTR_THRESHOLD`. Nodules and cardiomegaly are rarer than effusion.

Patients have several scans (1 to 4, follow-ups): a patient's anatomy, heart size and nodule
stay (with small changes of position, inspiration and size), while effusion comes and goes,
and positioning (shift, rotation), exposure and noise change from scan to scan. Three
scanners differ in contrast, brightness, sharpness and noise. The file name is
``<patient>_<index>.png`` (e.g. ``P00012_002.png``), so split by the patient (``patient_id``
or the name's prefix before ``_``).

Output folder::

    images/P00012_002.png   8-bit grayscale; with bit_depth 16, 16-bit grayscale detector values
                            (a 12-bit range with a scanner offset, as DICOM stores them)
    organs/P00012_002.png   8-bit, class index per pixel (:data:`ORGANS`)
    lesions/P00012_002.png  8-bit, class index per pixel (:data:`LESIONS`)
    manifest.jsonl          {"image", "organs", "lesions", "name", "patient_id", "scan",
                             "findings": multi-hot over FINDINGS, "nodule", "effusion",
                             "cardiomegaly": 0/1, "ctr", "scanner", "corruption"}

``corrupt`` makes a fraction of the items bad on purpose (a truncated or garbage image, a
missing image file, a mask with an out-of-range class), named in ``corruption``. Only NumPy
and PIL are needed; the same seed writes the same bytes.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from mtl_tf.data.synth import SYNTHESIZERS

ORGANS = ("background", "left_lung", "right_lung", "heart")
LESIONS = ("background", "nodule", "effusion")
FINDINGS = ("nodule", "effusion", "cardiomegaly")
BACKGROUND, LEFT_LUNG, RIGHT_LUNG, HEART = range(len(ORGANS))
NODULE, EFFUSION = 1, 2
CTR_THRESHOLD = 0.5
HEIGHT, WIDTH = 64, 64
SCANS_PER_PATIENT = (1, 4)
CORRUPTIONS = ("truncated_image", "missing_image", "mask_out_of_range", "garbage_image")
SUPERSAMPLE = 2  # the image is drawn at twice the size and averaged down: smooth edges, as a detector sees them
DETECTOR_MAX = 4095  # 12-bit detector values in 16-bit files
MIN_EFFUSION_PIXELS = 3

# Prevalence: patients with an enlarged heart or a nodule; scans with an effusion.
P_CARDIOMEGALY = 0.12
P_NODULE = 0.07
P_EFFUSION = 0.14
P_EFFUSION_ENLARGED_HEART = 0.45

# Attenuation (brightness before the scanner's response) of the tissues.
_AIR, _SOFT, _LUNG, _HEART, _SPINE, _FLUID, _BONE = 0.04, 0.5, 0.16, 0.68, 0.74, 0.56, 0.09


@dataclass(frozen=True)
class Scanner:
    """How one scanner renders attenuation: contrast (gamma), gain and offset, blur, noise."""

    gamma: float
    gain: float
    offset: float
    blur: float  # pixels (standard deviation), at the drawing's resolution
    noise: float
    detector_offset: int  # 16-bit output: the detector value of no attenuation


SCANNERS = (Scanner(0.9, 0.95, 0.03, 0.6, 0.018, 180), Scanner(1.15, 1.0, 0.0, 0.9, 0.026, 420),
            Scanner(0.8, 0.85, 0.07, 0.4, 0.035, 64))


@dataclass(frozen=True)
class Anatomy:
    """One patient's chest, in fractions of the image (u across, v down)."""

    lung_width: tuple[float, float]  # semi-axes across, patient's right lung then left
    lung_height: tuple[float, float]
    lung_gap: float  # half-width of the mediastinum at the lungs
    lung_top: float
    dome: tuple[float, float]  # the hemidiaphragms' highest point (v), right then left
    heart_width: float  # semi-axis across
    heart_height: float
    heart_centre: tuple[float, float]
    heart_tilt: float  # radians
    body_width: float
    nodule: tuple[int, float, float, float] | None  # lung (LEFT_LUNG/RIGHT_LUNG), position in the lung, radius
    vessels: int  # seed of the vessel pattern


@dataclass(frozen=True)
class Pose:
    """One scan's positioning and state: shift, rotation, inspiration, effusion."""

    shift: tuple[float, float]
    rotation: float  # radians
    inspiration: float  # scales the lungs' height
    effusion: tuple[int, float] | None  # side (LEFT_LUNG/RIGHT_LUNG), fluid height as a share of the lung
    scanner: int


@dataclass
class Scan:
    """One rendered scan with its masks and what they show."""

    image: np.ndarray  # uint8 (H, W), or uint16 (H, W) detector values with bit_depth 16
    organs: np.ndarray  # uint8 (H, W) class indices of ORGANS
    lesions: np.ndarray  # uint8 (H, W) class indices of LESIONS
    findings: dict[str, int]
    ctr: float
    patient_id: str
    scan: int
    scanner: int

    @property
    def name(self) -> str:
        return f"{self.patient_id}_{self.scan:03d}.png"


def anatomy(rng: np.random.Generator) -> Anatomy:
    """A random patient: lung and heart sizes, an enlarged heart or a nodule with their prevalence."""
    enlarged = rng.random() < P_CARDIOMEGALY
    right_w = float(rng.uniform(0.13, 0.15))
    left_w = right_w * float(rng.uniform(0.86, 0.95))
    height = float(rng.uniform(0.28, 0.33))
    lung_gap = float(rng.uniform(0.035, 0.05))
    lung_top = float(rng.uniform(0.12, 0.17))
    dome_left = lung_top + 2 * height * float(rng.uniform(0.8, 0.86))
    dome_right = dome_left - float(rng.uniform(0.015, 0.04))
    thorax = 2 * (lung_gap + right_w + left_w)  # between the lungs' outer edges
    ratio = float(rng.uniform(0.56, 0.66) if enlarged else rng.uniform(0.36, 0.47))
    heart_width = ratio * thorax / 2 / 0.97  # the tilted oval's extent is about 0.97 of twice its semi-axis
    nodule = None
    if rng.random() < P_NODULE:
        side = int(rng.choice([LEFT_LUNG, RIGHT_LUNG]))
        nodule = (side, float(rng.uniform(-0.55, 0.5)), float(rng.uniform(-0.65, 0.35)), float(rng.uniform(0.022,
                                                                                                             0.045)))
    return Anatomy(lung_width=(right_w, left_w), lung_height=(height, height * float(rng.uniform(0.96, 1.0))),
                   lung_gap=lung_gap, lung_top=lung_top, dome=(dome_right, dome_left), heart_width=heart_width,
                   heart_height=heart_width * float(rng.uniform(0.68, 0.8)),
                   heart_centre=(0.5 + heart_width * float(rng.uniform(0.35, 0.5)),
                                 dome_left - heart_width * float(rng.uniform(0.5, 0.62))),
                   heart_tilt=float(rng.uniform(0.25, 0.45)),
                   body_width=lung_gap + 2 * right_w + float(rng.uniform(0.07, 0.11)),
                   nodule=nodule, vessels=int(rng.integers(2**31)))


def pose(rng: np.random.Generator, body: Anatomy) -> Pose:
    """A random scan of ``body``: positioning, inspiration, an effusion with its prevalence."""
    enlarged = body.heart_width * 2 * 0.97 / (2 * (body.lung_gap + sum(body.lung_width))) > CTR_THRESHOLD
    chance = P_EFFUSION_ENLARGED_HEART if enlarged else P_EFFUSION
    effusion = None
    if rng.random() < chance:
        effusion = (int(rng.choice([LEFT_LUNG, RIGHT_LUNG])), float(rng.uniform(0.12, 0.4)))
    return Pose(shift=(float(rng.normal(0, 0.02)), float(rng.normal(0, 0.015))),
                rotation=float(rng.normal(0, 0.035)), inspiration=float(rng.uniform(0.94, 1.04)),
                effusion=effusion, scanner=int(rng.integers(len(SCANNERS))))


def _grid(height: int, width: int, p: Pose) -> tuple[np.ndarray, np.ndarray]:
    """Body coordinates (u, v) of every pixel centre: the scan's shift and rotation undone."""
    v, u = np.meshgrid((np.arange(height) + 0.5) / height, (np.arange(width) + 0.5) / width, indexing="ij")
    u, v = u - 0.5 - p.shift[0], v - 0.5 - p.shift[1]
    cos, sin = math.cos(p.rotation), math.sin(p.rotation)
    return cos * u + sin * v + 0.5, -sin * u + cos * v + 0.5


def _lung(u: np.ndarray, v: np.ndarray, body: Anatomy, p: Pose, side: int) -> np.ndarray:
    """Where one lung is: an oval cut by the mediastinum and by its hemidiaphragm's dome."""
    i = 0 if side == RIGHT_LUNG else 1
    sign = -1.0 if side == RIGHT_LUNG else 1.0  # the patient's right lung is on the image's left
    width, height = body.lung_width[i], body.lung_height[i] * p.inspiration
    cu = 0.5 + sign * (body.lung_gap + width)
    cv = body.lung_top + height
    inside = ((u - cu) / width) ** 2 + ((v - cv) / height) ** 2 <= 1.0
    medial = sign * (u - 0.5) > body.lung_gap + 0.02 * np.clip((v - cv) / height, 0, 1)
    return inside & medial & (v <= _dome(u, body, p, side))


def _dome(u: np.ndarray, body: Anatomy, p: Pose, side: int) -> np.ndarray:
    """The hemidiaphragm under one lung (image rows as fractions): highest near the lung's
    middle, falling away laterally into the costophrenic angle and medially to the heart."""
    i = 0 if side == RIGHT_LUNG else 1
    sign = -1.0 if side == RIGHT_LUNG else 1.0
    width = body.lung_width[i]
    top = body.lung_top + (body.dome[i] - body.lung_top) * p.inspiration
    peak = 0.5 + sign * (body.lung_gap + 0.9 * width)
    return top + 0.1 * ((u - peak) / width) ** 2


def _heart(u: np.ndarray, v: np.ndarray, body: Anatomy) -> np.ndarray:
    cu, cv = body.heart_centre
    cos, sin = math.cos(body.heart_tilt), math.sin(body.heart_tilt)
    x, y = u - cu, v - cv
    a, b = cos * x + sin * y, -sin * x + cos * y
    return (a / body.heart_width) ** 2 + (b / body.heart_height) ** 2 <= 1.0


def _nodule(u: np.ndarray, v: np.ndarray, body: Anatomy, p: Pose) -> tuple[np.ndarray, np.ndarray] | None:
    """(mask, brightness profile) of the patient's nodule, or None."""
    if body.nodule is None:
        return None
    side, du, dv, radius = body.nodule
    i = 0 if side == RIGHT_LUNG else 1
    sign = -1.0 if side == RIGHT_LUNG else 1.0
    width, height = body.lung_width[i], body.lung_height[i] * p.inspiration
    cu = 0.5 + sign * (body.lung_gap + width) + du * width * 0.6
    cv = body.lung_top + height + dv * height * 0.7
    distance = np.sqrt(((u - cu) / radius) ** 2 + ((v - cv) / radius) ** 2)
    return distance <= 1.0, np.clip(1.0 - distance ** 2, 0.0, 1.0) ** 0.5


def _fluid(u: np.ndarray, v: np.ndarray, lungs: dict[int, np.ndarray], body: Anatomy, p: Pose) -> np.ndarray:
    """The part of the effusion's lung below its meniscus (higher towards the chest wall)."""
    if p.effusion is None:
        return np.zeros(u.shape, bool)
    side, share = p.effusion
    lung = lungs[side]
    i = 0 if side == RIGHT_LUNG else 1
    sign = -1.0 if side == RIGHT_LUNG else 1.0
    height = body.lung_height[i] * p.inspiration
    base = body.lung_top + (body.dome[i] - body.lung_top) * p.inspiration + 0.06
    level = base - share * 2 * height
    lateral = np.clip(sign * (u - 0.5) - body.lung_gap, 0, None) / (2 * body.lung_width[i])
    meniscus = level - 0.12 * height * lateral ** 2
    return lung & (v >= meniscus)


def _ribs(u: np.ndarray, v: np.ndarray, body: Anatomy) -> np.ndarray:
    """Faint bright arcs: the posterior ribs, curving down from the spine to the chest wall."""
    x = np.abs(u - 0.5)
    arcs = v - 0.35 * x ** 2 / max(body.body_width, 1e-3) - 0.1 * x
    phase = (arcs - body.lung_top + 0.02) / 0.062
    bands = np.clip(np.cos(2 * np.pi * phase) - 0.35, 0, None) / 0.65
    within = (phase > -0.3) & (phase < 10) & (x < body.body_width - 0.02)
    return np.where(within, bands, 0.0)


def _vessels(u: np.ndarray, v: np.ndarray, body: Anatomy) -> np.ndarray:
    """Branching lung markings: brighter near the hila, fading to the periphery."""
    rng = np.random.default_rng(body.vessels)
    marks = np.zeros(u.shape)
    for sign in (-1.0, 1.0):
        hu, hv = 0.5 + sign * (body.lung_gap + 0.04), body.heart_centre[1] - 0.12
        angle = np.arctan2(v - hv, sign * (u - hu))
        radius = np.hypot(u - hu, v - hv)
        pattern = sum(np.cos(k * angle + rng.uniform(0, 2 * np.pi)) for k in (9, 14, 23)) / 3
        marks += np.clip(pattern, 0, None) ** 2 * np.exp(-radius / 0.12) * (radius > 0.02)
    return marks


def render(body: Anatomy, p: Pose, height: int, width: int, patient_id: str, scan: int,
           bit_depth: int = 8, seed: int = 0) -> Scan:
    """Draws one scan: the image at ``SUPERSAMPLE`` times the size, averaged down, and the masks
    and findings at the stored size."""
    rng = np.random.default_rng(seed)
    organs, lesions, _ = _layers(*_grid(height, width, p), body, p)
    big_h, big_w = height * SUPERSAMPLE, width * SUPERSAMPLE
    u, v = _grid(big_h, big_w, p)
    _, big_lesions, attenuation = _layers(u, v, body, p)
    scanner = SCANNERS[p.scanner]
    attenuation = _blur(attenuation, scanner.blur * SUPERSAMPLE / 2)
    attenuation = attenuation.reshape(height, SUPERSAMPLE, width, SUPERSAMPLE).mean(axis=(1, 3))
    signal = np.clip(attenuation, 0, 1) ** scanner.gamma * scanner.gain + scanner.offset
    signal = signal * float(rng.uniform(0.93, 1.07)) + float(rng.normal(0, 0.02))  # exposure of this scan
    signal = signal + rng.normal(0, scanner.noise, signal.shape) * (0.6 + 0.8 * np.sqrt(np.clip(signal, 0, 1)))
    signal = np.clip(signal, 0, 1)
    if bit_depth == 16:
        image = np.round(scanner.detector_offset + signal * (DETECTOR_MAX - scanner.detector_offset)).astype(np.uint16)
    else:
        image = np.round(signal * 255).astype(np.uint8)
    findings, ctr = read_findings(organs, lesions)
    return Scan(image=image, organs=organs, lesions=lesions, findings=findings, ctr=ctr, patient_id=patient_id,
                scan=scan, scanner=p.scanner)


def _layers(u: np.ndarray, v: np.ndarray, body: Anatomy, p: Pose) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(organ mask, lesion mask, attenuation) on the grid (u, v)."""
    x = u - 0.5
    # The torso: a rounded rectangle (a superellipse), its top corners the shoulders.
    in_body = np.abs(x / body.body_width) ** 4 + np.abs((v - 0.56) / 0.6) ** 4 <= 1.0
    attenuation = np.where(in_body, _SOFT, _AIR)
    heart = _heart(u, v, body)
    right, left = _lung(u, v, body, p, RIGHT_LUNG) & ~heart, _lung(u, v, body, p, LEFT_LUNG) & ~heart
    lungs = right | left
    fluid = _fluid(u, v, {RIGHT_LUNG: right, LEFT_LUNG: left}, body, p)
    spine = (np.abs(x) < 0.035) & in_body
    dome = np.where(u < 0.5, _dome(u, body, p, RIGHT_LUNG), _dome(u, body, p, LEFT_LUNG))
    abdomen = in_body & (v > dome) & ~lungs & ~heart
    attenuation = np.where(abdomen, _SOFT + 0.08, attenuation)
    attenuation = np.where(spine, _SPINE, attenuation)
    marks = _vessels(u, v, body)
    attenuation = np.where(lungs, _LUNG + 0.3 * marks, attenuation)
    attenuation = np.where(heart, _HEART, attenuation)
    attenuation = attenuation + _BONE * _ribs(u, v, body) * (in_body & (v < dome + 0.03))
    clavicle = np.abs(v - (0.13 + 0.12 * np.abs(x))) < 0.012
    attenuation = np.where(clavicle & in_body & (np.abs(x) > 0.04) & (np.abs(x) < 0.3), attenuation + 0.18,
                           attenuation)
    attenuation = np.where(fluid, _FLUID + 0.04 * (v - v.min()), attenuation)
    lesions = np.where(fluid, EFFUSION, 0).astype(np.uint8)
    nodule = _nodule(u, v, body, p)
    if nodule is not None:
        where, profile = nodule
        where = where & lungs & ~fluid
        attenuation = np.where(where, np.maximum(attenuation, _LUNG + 0.55 * profile + 0.12), attenuation)
        lesions = np.where(where, NODULE, lesions).astype(np.uint8)
    organs = np.zeros(u.shape, np.uint8)
    organs[right] = RIGHT_LUNG
    organs[left] = LEFT_LUNG
    organs[heart] = HEART
    return organs, lesions, attenuation


def _blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """A separable Gaussian blur (edges repeated)."""
    if sigma <= 0.05:
        return image
    radius = max(1, int(math.ceil(3 * sigma)))
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    kernel /= kernel.sum()
    padded = np.pad(image, radius, mode="edge")
    rows = sum(k * padded[:, i:i + image.shape[1]] for i, k in enumerate(kernel))
    return sum(k * rows[i:i + image.shape[0], :] for i, k in enumerate(kernel))


def read_findings(organs: np.ndarray, lesions: np.ndarray) -> tuple[dict[str, int], float]:
    """The findings the masks show, and the cardiothoracic ratio (heart width / thorax width,
    the thorax between the lungs' outer edges, in pixel columns; 0 without a lung)."""
    lung_columns = np.flatnonzero(np.isin(organs, (LEFT_LUNG, RIGHT_LUNG)).any(axis=0))
    heart_columns = np.flatnonzero((organs == HEART).any(axis=0))
    thorax = lung_columns[-1] - lung_columns[0] + 1 if lung_columns.size else 0
    heart = heart_columns[-1] - heart_columns[0] + 1 if heart_columns.size else 0
    ctr = heart / thorax if thorax else 0.0
    findings = {"nodule": int((lesions == NODULE).any()),
                "effusion": int((lesions == EFFUSION).sum() >= MIN_EFFUSION_PIXELS),
                "cardiomegaly": int(ctr > CTR_THRESHOLD)}
    return findings, float(ctr)


def _with_effusion_seen(p: Pose, body: Anatomy, height: int, width: int) -> Pose:
    """A pose whose effusion is too small to show at this size is a pose without one."""
    if p.effusion is None:
        return p
    _, lesions, _ = _layers(*_grid(height, width, p), body, p)
    return p if (lesions == EFFUSION).sum() >= MIN_EFFUSION_PIXELS else replace(p, effusion=None)


@SYNTHESIZERS.register("medical_imaging")
class MedicalImaging:
    """Chest radiographs with organ masks (lungs, heart), lesion masks (nodule, effusion) and findings."""

    writes = "images"
    options = ("bit_depth",)
    organs = ORGANS
    lesions = LESIONS
    findings = FINDINGS

    def scans(self, rows: int, rng: np.random.Generator, height: int = HEIGHT, width: int = WIDTH,
              bit_depth: int = 8):
        """The ``rows`` scans, patient after patient (1 to 4 scans each)."""
        patient, done = 0, 0
        while done < rows:
            patient_rng = np.random.default_rng([int(rng.integers(2**31)), patient])
            body = anatomy(patient_rng)
            count = min(int(patient_rng.integers(SCANS_PER_PATIENT[0], SCANS_PER_PATIENT[1] + 1)), rows - done)
            for index in range(count):
                scan_body = _follow_up(body, patient_rng) if index else body
                p = _with_effusion_seen(pose(patient_rng, scan_body), scan_body, height, width)
                yield render(scan_body, p, height, width, f"P{patient:05d}", index + 1, bit_depth,
                             seed=int(patient_rng.integers(2**31)))
            patient += 1
            done += count

    def write(self, rows: int, out_dir: str | Path, rng: np.random.Generator, height: int = HEIGHT,
              width: int = WIDTH, corrupt: float = 0.0, bit_depth: int = 8) -> Path:
        """Writes ``rows`` scans and ``manifest.jsonl`` under ``out_dir``; returns the manifest's path."""
        if bit_depth not in (8, 16):
            raise ValueError(f"bit_depth must be 8 or 16; received {bit_depth!r}")
        out = Path(out_dir)
        for folder in ("images", "organs", "lesions"):
            (out / folder).mkdir(parents=True, exist_ok=True)
        bad = _corruptions(rows, corrupt, np.random.default_rng(rng.integers(2**31)))
        manifest = out / "manifest.jsonl"
        with manifest.open("w") as handle:
            for index, scan in enumerate(self.scans(rows, rng, height, width, bit_depth)):
                handle.write(json.dumps(_write_scan(out, scan, bad.get(index))) + "\n")
        return manifest


def _follow_up(body: Anatomy, rng: np.random.Generator) -> Anatomy:
    """The same patient at a later scan: the nodule a little larger or smaller."""
    if body.nodule is None:
        return body
    side, du, dv, radius = body.nodule
    return replace(body, nodule=(side, du, dv, radius * float(rng.uniform(0.9, 1.15))))


def _corruptions(rows: int, fraction: float, rng: np.random.Generator) -> dict[int, str]:
    count = int(round(rows * fraction))
    chosen = sorted(rng.choice(rows, size=count, replace=False).tolist()) if count else []
    return {index: CORRUPTIONS[i % len(CORRUPTIONS)] for i, index in enumerate(chosen)}


def _write_scan(out: Path, scan: Scan, corruption: str | None) -> dict:
    from PIL import Image

    name = scan.name
    organs = scan.organs
    if corruption == "mask_out_of_range":
        organs = organs.copy()
        organs[:2, :2] = 9
    image_path = f"images/{name}" if corruption != "missing_image" else f"images/missing_{name}"
    if corruption != "missing_image":
        path = out / image_path
        Image.fromarray(scan.image).save(path, compress_level=1)
        if corruption == "truncated_image":
            data = path.read_bytes()
            path.write_bytes(data[: len(data) // 2])
        elif corruption == "garbage_image":
            path.write_bytes(bytes(range(256)) * 4)
    Image.fromarray(organs, "L").save(out / "organs" / name, compress_level=1)
    Image.fromarray(scan.lesions, "L").save(out / "lesions" / name, compress_level=1)
    return {"image": image_path, "organs": f"organs/{name}", "lesions": f"lesions/{name}", "name": name,
            "patient_id": scan.patient_id, "scan": scan.scan, "findings": [scan.findings[f] for f in FINDINGS],
            **scan.findings, "ctr": round(scan.ctr, 4), "scanner": scan.scanner, "corruption": corruption}
