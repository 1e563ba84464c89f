"""CIFAR-10 data: the standard `cifar-10-batches-py` folder, synthetic data in the same format,
and device-resident batches with the study's augmentation done batch-wise on the device.

Real CIFAR-10 is recognised by the official per-file MD5 checksums; synthetic data carries a
`synthetic.json` marker; anything else is refused unless the data spec says
`"allow_unverified": true`. Generate synthetic data by hand with
``python -m sparsegrid_engine make-synthetic --out DIR --train 512 --test 256 --seed 0``.
"""

import functools
import hashlib
import json
import os
import pickle
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .protocol import InvalidTask, TaskFailed

TRAIN_FILES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5")
TEST_FILE = "test_batch"
# Official MD5s of the python-version archive's files, as published in torchvision's
# datasets/cifar.py (CIFAR10.train_list / test_list); a test cross-checks them.
CIFAR10_MD5 = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
}
SYNTHETIC_MARKER = "synthetic.json"
CLASSES = 10
MEAN = (0.4914, 0.4822, 0.4465)  # per-channel, of pixel / 255 (the study's values)
STD = (0.2023, 0.1994, 0.2010)
PAD = 4  # pixels of zero padding before the random 32x32 crop


@dataclass
class Split:
    images: torch.Tensor  # (N, 3, 32, 32) uint8
    labels: torch.Tensor  # (N,) int64

    def __len__(self) -> int:
        return self.labels.shape[0]

    def to(self, device) -> "Split":
        return Split(self.images.to(device), self.labels.to(device))


@dataclass
class Dataset:
    train: Split
    test: Split
    info: dict  # {"dataset": "cifar10"|"synthetic", "verified": bool, "fingerprint": str, ...}


# ---------------------------------------------------------------- the on-disk format


def _write_batch(path: Path, images: np.ndarray, labels: np.ndarray, label: str) -> None:
    # Same layout as the official files: bytes keys, rows of 3072 uint8 (1024 R, G, B planes).
    entry = {
        b"batch_label": label.encode(),
        b"labels": [int(v) for v in labels],
        b"data": np.ascontiguousarray(images.reshape(len(images), 3072), dtype=np.uint8),
        b"filenames": [f"{label}_{i:05d}.png".encode() for i in range(len(images))],
    }
    with open(path, "wb") as f:
        pickle.dump(entry, f, protocol=2)


def _parse_batch(raw: bytes, path: Path) -> Split:
    try:
        entry = pickle.loads(raw, encoding="bytes")
        data = entry.get(b"data", entry.get("data"))
        labels = entry.get(b"labels", entry.get("labels"))
        images = np.asarray(data, dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = np.asarray(labels, dtype=np.int64)
    except Exception as e:
        raise TaskFailed(
            f"{path} is not a CIFAR-10 python batch file ({e}); "
            "re-extract cifar-10-python.tar.gz or regenerate the data."
        ) from e
    if len(images) != len(labels) or (len(labels) and not (0 <= labels.min() and labels.max() < CLASSES)):
        raise TaskFailed(
            f"{path} holds {len(images)} images and {len(labels)} labels "
            f"(labels must be 0..{CLASSES - 1}); the file is damaged."
        )
    return Split(torch.from_numpy(images.copy()), torch.from_numpy(labels))


def read_cifar_folder(root, *, allow_unverified: bool = False) -> Dataset:
    """Reads a `cifar-10-batches-py` folder and says what it is.

    info["dataset"] is "cifar10" with verified=True when every file matches the official MD5,
    "synthetic" when the checksums differ and the synthetic marker is present. Other data is
    refused (TaskFailed) unless allow_unverified, then reported as cifar10 with verified=False.
    """
    root = Path(root).expanduser()
    names = (*TRAIN_FILES, TEST_FILE)
    missing = [n for n in names if not (root / n).is_file()]
    if missing:
        raise TaskFailed(
            f"CIFAR-10 folder {root} lacks {', '.join(missing)}; point data.root at the "
            "extracted cifar-10-batches-py folder (from cifar-10-python.tar.gz)."
        )
    splits, mismatched, digest = {}, [], hashlib.sha256()
    for name in names:
        raw = (root / name).read_bytes()
        if hashlib.md5(raw).hexdigest() != CIFAR10_MD5[name]:
            mismatched.append(name)
        digest.update(name.encode() + b"\0" + hashlib.sha256(raw).digest())
        splits[name] = _parse_batch(raw, root / name)
    train = Split(
        torch.cat([splits[n].images for n in TRAIN_FILES]), torch.cat([splits[n].labels for n in TRAIN_FILES])
    )
    info = {
        "dataset": "cifar10",
        "verified": not mismatched,
        "fingerprint": digest.hexdigest()[:16],
        "root": str(root),
        "train": len(train),
        "test": len(splits[TEST_FILE]),
    }
    marker = root / SYNTHETIC_MARKER
    if mismatched and marker.is_file():
        info.update({"dataset": "synthetic", "verified": False, **_read_marker(marker)})
    elif mismatched and not allow_unverified:
        raise TaskFailed(
            f"{root} is not verified CIFAR-10: {', '.join(mismatched)} do not match the official "
            "MD5 checksums and there is no synthetic.json marker. Re-extract the official archive, "
            'or set "allow_unverified": true in the data spec to use it anyway (results say so).'
        )
    return Dataset(train, splits[TEST_FILE], info)


def _read_marker(marker: Path) -> dict:
    try:
        meta = json.loads(marker.read_text())
    except (OSError, ValueError):
        return {}
    return {k: meta[k] for k in ("generator", "seed", "noise", "distractor") if k in meta}


# ---------------------------------------------------------------- synthetic data

SYNTHETIC_GENERATOR = "sparsegrid-gratings-v1"  # bump when the images a seed produces change
NOISE = 1.2  # default pixel noise std, in units of a template's amplitude (data key `noise`)
DISTRACTOR = 0.7  # default weight of another class's pattern mixed into each image (`distractor`)
SYNTHETIC_MAX_IMAGES = 1_000_000  # per split: a bound on what a task may ask the engine to generate
NOISE_RANGE = (0.0, 4.0)
DISTRACTOR_RANGE = (0.0, 1.0)


def _class_templates(rng: np.random.Generator) -> np.ndarray:
    # Each class: a colour cast plus three oriented gratings with their own channel mix. Colours
    # and gratings overlap between classes, so no single pixel statistic gives the class away.
    yy, xx = np.mgrid[0:32, 0:32].astype(np.float32) / 32.0
    templates = np.zeros((CLASSES, 3, 32, 32), np.float32)
    for c in range(CLASSES):
        templates[c] += rng.uniform(-0.35, 0.35, (3, 1, 1))
        for _ in range(3):
            fx, fy = 0, 0
            while fx == 0 and fy == 0:
                fx, fy = rng.integers(-3, 4, 2)
            wave = np.sin(2 * np.pi * (fx * xx + fy * yy) + rng.uniform(0, 2 * np.pi))
            templates[c] += rng.uniform(0.25, 0.5) * rng.uniform(-1, 1, (3, 1, 1)) * wave
    return templates


def _synthetic_images(
    templates: np.ndarray, n: int, rng: np.random.Generator, noise: float = NOISE, distractor: float = DISTRACTOR
) -> tuple[np.ndarray, np.ndarray]:
    labels = rng.permutation(np.arange(n) % CLASSES)
    images = np.empty((n, 3, 32, 32), np.uint8)
    ar = np.arange(32)
    for lo in range(0, n, 4096):  # chunks bound the float working set to ~50 MB
        y = labels[lo : lo + 4096]
        k = len(y)
        # Shift each image's pattern by up to 4 pixels (wrapping), like a camera jitter.
        dy, dx = rng.integers(-4, 5, (2, k))
        rows = (ar[None, :] - dy[:, None]) % 32
        cols = (ar[None, :] - dx[:, None]) % 32
        base = templates[y][
            np.arange(k)[:, None, None, None],
            np.arange(3)[None, :, None, None],
            rows[:, None, :, None],
            cols[:, None, None, :],
        ]
        # A faint copy of another class, contrast/brightness jitter and pixel noise.
        other = templates[(y + rng.integers(1, CLASSES, k)) % CLASSES]
        value = (base + distractor * other) * rng.uniform(0.6, 1.4, (k, 1, 1, 1)) + rng.uniform(-0.3, 0.3, (k, 1, 1, 1))
        value += rng.normal(0.0, noise, value.shape).astype(np.float32)
        images[lo : lo + k] = np.clip(128 + 70 * value, 0, 255).astype(np.uint8)
    return images, labels


def make_synthetic(out, train: int, test: int, seed: int, noise: float = NOISE, distractor: float = DISTRACTOR) -> Path:
    """Writes learnable synthetic data in the cifar-10-batches-py format, with the marker.

    `noise` and `distractor` set how hard it is: the defaults make a task that a CIFAR model
    needs many epochs to learn; the demo lowers both so a few optimizer steps get well above
    chance (10%)."""
    if train < CLASSES or test < CLASSES:
        raise InvalidTask(
            f"synthetic data needs at least {CLASSES} train and test images (one per class); "
            f"got train={train}, test={test}."
        )
    out = Path(out).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    templates = _class_templates(np.random.default_rng([seed, 0]))
    images, labels = _synthetic_images(templates, train, np.random.default_rng([seed, 1]), noise, distractor)
    for i, idx in enumerate(np.array_split(np.arange(train), len(TRAIN_FILES))):
        _write_batch(out / TRAIN_FILES[i], images[idx], labels[idx], f"synthetic training batch {i + 1} of 5")
    images, labels = _synthetic_images(templates, test, np.random.default_rng([seed, 2]), noise, distractor)
    _write_batch(out / TEST_FILE, images, labels, "synthetic testing batch 1 of 1")
    marker = {"dataset": "synthetic", "generator": SYNTHETIC_GENERATOR, "train": train, "test": test, "seed": seed}
    if (noise, distractor) != (NOISE, DISTRACTOR):
        marker.update({"noise": noise, "distractor": distractor})
    (out / SYNTHETIC_MARKER).write_text(json.dumps(marker, indent=1) + "\n")
    return out


def cache_dir() -> Path:
    return Path(os.environ.get("SPARSEGRID_CACHE") or "~/.cache/sparsegrid").expanduser()


def ensure_synthetic(train: int, test: int, seed: int, noise: float = NOISE, distractor: float = DISTRACTOR) -> Path:
    """The cached synthetic folder for these sizes and seed, generated once.

    Generated into a private temporary folder and renamed into place, so concurrent workers
    never see a half-written folder; the loser of a race discards its copy.
    """
    name = f"synthetic-{train}-{test}-{seed}"
    if (noise, distractor) != (NOISE, DISTRACTOR):
        name += f"-noise{noise!r}-distractor{distractor!r}"
    final = cache_dir() / name
    if (final / SYNTHETIC_MARKER).is_file():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        make_synthetic(tmp, train, test, seed, noise, distractor)
        try:
            os.rename(tmp, final)
        except OSError:
            if not (final / SYNTHETIC_MARKER).is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def _int_field(spec: dict, key: str, default=None, maximum: int = 2**31 - 1) -> int:
    value = spec.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
        raise InvalidTask(f"data.{key} must be an integer from 0 to {maximum}; got {str(value)[:40]}.")
    return value


def _float_field(spec: dict, key: str, default: float, bounds: tuple[float, float]) -> float:
    value = spec.get(key, default)
    lo, hi = bounds
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
        raise InvalidTask(f"data.{key} must be a number from {lo} to {hi}; got {str(value)[:40]}.")
    return float(value)


def _synthetic_args(spec: dict) -> tuple[int, int, int, float, float]:
    return (
        _int_field(spec, "train", maximum=SYNTHETIC_MAX_IMAGES),
        _int_field(spec, "test", maximum=SYNTHETIC_MAX_IMAGES),
        _int_field(spec, "seed", 0),
        _float_field(spec, "noise", NOISE, NOISE_RANGE),
        _float_field(spec, "distractor", DISTRACTOR, DISTRACTOR_RANGE),
    )


def check_data_spec(spec) -> str:
    """The dataset a task's "data" names ("synthetic" or "cifar10"), after checking the spec's
    keys and types; InvalidTask otherwise. Reads no file."""
    if not isinstance(spec, dict):
        raise InvalidTask(
            f'the task\'s "data" must be an object such as {{"dataset": "cifar10", "root": PATH}}; got {spec!r}.'
        )
    kind = spec.get("dataset")
    if kind == "synthetic":
        extra = set(spec) - {"dataset", "train", "test", "seed", "noise", "distractor"}
        if extra:
            raise InvalidTask(
                f"unknown synthetic data key(s) {sorted(extra)[:8]}; valid: dataset, train, test, seed, noise, distractor."
            )
        _synthetic_args(spec)
        return kind
    if kind == "cifar10":
        extra = set(spec) - {"dataset", "root", "allow_unverified"}
        if extra:
            raise InvalidTask(f"unknown cifar10 data key(s) {sorted(extra)}; valid: dataset, root, allow_unverified.")
        if not isinstance(spec.get("root"), str):
            raise InvalidTask(
                'data.root must be the path of the cifar-10-batches-py folder, e.g. "~/data/cifar-10-batches-py".'
            )
        return kind
    raise InvalidTask(f"unknown dataset {kind!r}; valid datasets: cifar10, synthetic.")


def load_data(spec: dict) -> Dataset:
    """Loads the data a task names: {"dataset": "synthetic", "train", "test", "seed"} or
    {"dataset": "cifar10", "root", "allow_unverified"?}."""
    if check_data_spec(spec) == "synthetic":
        folder = ensure_synthetic(*_synthetic_args(spec))
        return read_cifar_folder(folder)
    return read_cifar_folder(spec["root"], allow_unverified=bool(spec.get("allow_unverified", False)))


def hold_out(train: Split, n: int) -> tuple[Split, Split]:
    """Splits off n training images as a validation split (the same n images for every task:
    the permutation has a fixed seed so a fine-tune never trains on what its train stage held out)."""
    if not 0 < n < len(train):
        raise InvalidTask(
            f"val_split must be between 1 and {len(train) - 1} (the training set has {len(train)} images); "
            f"got {n}. Use 0 to validate on the test split."
        )
    perm = torch.randperm(len(train), generator=torch.Generator().manual_seed(20240229))
    val, rest = perm[:n], perm[n:]
    return Split(train.images[rest], train.labels[rest]), Split(train.images[val], train.labels[val])


# ---------------------------------------------------------------- device-side batches


def augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random 32x32 crop of the zero-padded image and a horizontal flip with p=0.5, batch-wise
    on the images' device. uint8 in, uint8 out; the random draws come from a CPU generator."""
    n, _, h, w = images.shape
    device = images.device
    offsets = torch.randint(0, 2 * PAD + 1, (2, n), generator=generator).to(device)
    flip = (torch.rand(n, generator=generator) < 0.5).to(device)
    padded = torch.nn.functional.pad(images, (PAD, PAD, PAD, PAD))
    rows = offsets[0][:, None] + torch.arange(h, device=device)  # (n, h)
    cols = offsets[1][:, None] + torch.arange(w, device=device)  # (n, w)
    cols = torch.where(flip[:, None], cols.flip(1), cols)  # flipping = reading columns backwards
    return padded[
        torch.arange(n, device=device)[:, None, None, None],
        torch.arange(3, device=device)[None, :, None, None],
        rows[:, None, :, None],
        cols[:, None, None, :],
    ]


@functools.lru_cache(maxsize=8)
def _scale_shift(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    # Built once per device: a fresh host-to-GPU copy per batch would synchronise every step.
    std = torch.tensor(STD).view(1, 3, 1, 1)
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    return (1.0 / (255.0 * std)).to(device), (mean / std).to(device)


def normalise(images: torch.Tensor, channels_last: bool = False) -> torch.Tensor:
    """uint8 (N,3,H,W) -> float32 (pixel / 255 - mean) / std with the study's mean and std."""
    scale, shift = _scale_shift(images.device)
    x = images.float() * scale - shift
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def steps_per_epoch(n: int, batch_size: int, max_steps=None) -> int:
    # A last batch of one image would break batch norm in training mode; it is dropped.
    steps = n // batch_size + (1 if n % batch_size > 1 else 0)
    return max(1, min(steps, max_steps) if max_steps else steps)


def shuffled_batches(split: Split, batch_size: int, generator: torch.Generator, max_steps=None):
    """Yields (uint8 images, labels) batches of a seeded permutation, on the split's device."""
    order = torch.randperm(len(split), generator=generator).to(split.labels.device)
    for step in range(steps_per_epoch(len(split), batch_size, max_steps)):
        idx = order[step * batch_size : (step + 1) * batch_size]
        yield split.images[idx], split.labels[idx]
