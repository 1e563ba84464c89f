"""The CIFAR-10 reader, checksum verification, synthetic data and device-side augmentation."""

import hashlib
import json
import threading

import numpy as np
import pytest
import torch
import torchvision

from sparsegrid_engine import data
from sparsegrid_engine.protocol import InvalidTask, TaskFailed


def test_reader_returns_uint8_nchw_images_and_int_labels(synthetic_dir):
    ds = data.read_cifar_folder(synthetic_dir)
    assert ds.train.images.shape == (200, 3, 32, 32) and ds.train.images.dtype == torch.uint8
    assert ds.test.images.shape == (60, 3, 32, 32) and ds.test.images.dtype == torch.uint8
    assert ds.train.labels.dtype == torch.int64 and ds.train.labels.shape == (200,)
    # Labels are balanced over the ten classes and all in range.
    assert torch.bincount(ds.train.labels, minlength=10).tolist() == [20] * 10
    assert torch.bincount(ds.test.labels, minlength=10).tolist() == [6] * 10


def test_reader_reads_the_official_row_layout_as_red_green_blue_planes(tmp_path):
    # One image per file whose red plane is 10, green 20, blue 30, as the official rows store them.
    row = np.concatenate([np.full(1024, 10), np.full(1024, 20), np.full(1024, 30)]).astype(np.uint8)
    for name in (*data.TRAIN_FILES, data.TEST_FILE):
        data._write_batch(tmp_path / name, row[None].reshape(1, 3, 32, 32), np.array([7]), name)
    ds = data.read_cifar_folder(tmp_path, allow_unverified=True)
    assert ds.train.images[0, :, 5, 9].tolist() == [10, 20, 30]
    assert ds.train.labels.tolist() == [7] * 5 and ds.test.labels.tolist() == [7]


def test_checksums_are_torchvisions_official_ones():
    official = dict(torchvision.datasets.CIFAR10.train_list + torchvision.datasets.CIFAR10.test_list)
    assert data.CIFAR10_MD5 == official


def test_synthetic_folder_is_reported_as_synthetic_not_cifar10(synthetic_dir):
    info = data.read_cifar_folder(synthetic_dir).info
    assert info["dataset"] == "synthetic" and info["verified"] is False
    assert info["seed"] == 3 and info["generator"] == data.SYNTHETIC_GENERATOR
    assert len(info["fingerprint"]) == 16


def _copy_without_marker(src, dst):
    dst.mkdir()
    for name in (*data.TRAIN_FILES, data.TEST_FILE):
        (dst / name).write_bytes((src / name).read_bytes())
    return dst


def test_unverified_files_without_marker_are_refused_with_a_way_out(synthetic_dir, tmp_path):
    folder = _copy_without_marker(synthetic_dir, tmp_path / "fake")
    with pytest.raises(TaskFailed, match="not verified CIFAR-10.*allow_unverified"):
        data.read_cifar_folder(folder)
    info = data.read_cifar_folder(folder, allow_unverified=True).info
    assert info == {**info, "dataset": "cifar10", "verified": False}


def test_files_matching_the_checksum_table_are_verified(synthetic_dir, tmp_path, monkeypatch):
    # Real CIFAR-10 is not on this machine; give the table these files' digests instead, so the
    # verified branch runs on real files and real MD5s.
    folder = _copy_without_marker(synthetic_dir, tmp_path / "verified")
    table = {n: hashlib.md5((folder / n).read_bytes()).hexdigest() for n in data.CIFAR10_MD5}
    monkeypatch.setattr(data, "CIFAR10_MD5", table)
    info = data.read_cifar_folder(folder).info
    assert info["dataset"] == "cifar10" and info["verified"] is True
    # One changed byte and it is no longer verified.
    raw = bytearray((folder / "test_batch").read_bytes())
    raw[-100] ^= 1
    (folder / "test_batch").write_bytes(bytes(raw))
    assert data.read_cifar_folder(folder, allow_unverified=True).info["verified"] is False


def test_fingerprint_changes_with_the_content(synthetic_dir, tmp_path):
    folder = _copy_without_marker(synthetic_dir, tmp_path / "copy")
    before = data.read_cifar_folder(folder, allow_unverified=True).info["fingerprint"]
    assert before == data.read_cifar_folder(synthetic_dir).info["fingerprint"]
    data.make_synthetic(folder, train=200, test=60, seed=4)
    assert data.read_cifar_folder(folder).info["fingerprint"] != before


def test_missing_files_name_what_is_missing(tmp_path):
    with pytest.raises(TaskFailed, match="lacks data_batch_1.*test_batch"):
        data.read_cifar_folder(tmp_path)


def test_synthetic_data_is_a_pure_function_of_its_seed(tmp_path):
    a = data.make_synthetic(tmp_path / "a", train=50, test=20, seed=1)
    b = data.make_synthetic(tmp_path / "b", train=50, test=20, seed=1)
    c = data.make_synthetic(tmp_path / "c", train=50, test=20, seed=2)
    for name in (*data.TRAIN_FILES, data.TEST_FILE):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    assert (a / "test_batch").read_bytes() != (c / "test_batch").read_bytes()
    assert json.loads((a / "synthetic.json").read_text())["dataset"] == "synthetic"


def test_synthetic_classes_differ_but_a_pixel_mean_does_not_give_them_away(synthetic_dir):
    ds = data.read_cifar_folder(synthetic_dir)
    x = ds.train.images.float()
    # Nearest class-mean colour: the cheapest possible classifier must stay far from perfect.
    colour = x.mean(dim=(2, 3))
    centres = torch.stack([colour[ds.train.labels == c].mean(0) for c in range(10)])
    guess = torch.cdist(colour, centres).argmin(1)
    colour_acc = (guess == ds.train.labels).float().mean().item()
    assert 0.1 < colour_acc < 0.8
    # Images are not copies of their class template: same-class images differ substantially.
    same = x[ds.train.labels == 0]
    assert (same[0] - same[1]).abs().mean() > 20


def test_synthetic_cache_is_generated_once_and_atomically(tmp_path, monkeypatch):
    monkeypatch.setenv("SPARSEGRID_CACHE", str(tmp_path))
    paths, errors = [], []

    def worker():
        try:
            paths.append(data.ensure_synthetic(40, 20, 9))
        except Exception as e:  # surfaced by the assertion below
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert set(paths) == {tmp_path / "synthetic-40-20-9"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["synthetic-40-20-9"]  # no temp folders left
    assert data.load_data({"dataset": "synthetic", "train": 40, "test": 20, "seed": 9}).info["dataset"] == "synthetic"


def test_data_spec_errors_are_invalid_tasks():
    with pytest.raises(InvalidTask, match="unknown dataset 'imagenet'; valid datasets: cifar10, synthetic"):
        data.load_data({"dataset": "imagenet"})
    with pytest.raises(InvalidTask, match="unknown synthetic data key"):
        data.load_data({"dataset": "synthetic", "train": 10, "test": 10, "size": 3})
    with pytest.raises(InvalidTask, match="data.root"):
        data.load_data({"dataset": "cifar10"})


def test_synthetic_difficulty_keys_are_range_checked_and_change_the_cached_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("SPARSEGRID_CACHE", str(tmp_path))
    easy = {"dataset": "synthetic", "train": 40, "test": 20, "seed": 3, "noise": 0.1, "distractor": 0.0}
    ds = data.load_data(easy)
    assert (ds.info["noise"], ds.info["distractor"]) == (0.1, 0.0)
    default = data.load_data({"dataset": "synthetic", "train": 40, "test": 20, "seed": 3})
    assert "noise" not in default.info  # the default data keeps its folder name and marker
    assert not torch.equal(ds.test.images, default.test.images)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "synthetic-40-20-3",
        "synthetic-40-20-3-noise0.1-distractor0.0",
    ]
    for bad, message in [
        ({"noise": -0.1}, "data.noise must be a number from 0.0 to 4.0"),
        ({"noise": 4.5}, "data.noise must be a number from 0.0 to 4.0"),
        ({"noise": True}, "data.noise"),
        ({"distractor": 1.5}, "data.distractor must be a number from 0.0 to 1.0"),
        ({"train": data.SYNTHETIC_MAX_IMAGES + 1}, "data.train must be an integer from 0 to 1000000"),
        ({"seed": 2**31}, "data.seed must be an integer from 0"),
    ]:
        with pytest.raises(InvalidTask, match=message):
            data.check_data_spec({**easy, **bad})


def test_low_noise_synthetic_data_is_easier_for_the_cheapest_classifier(tmp_path):
    """The demo's setting (noise 0.1, no distractor) must be easier than the default: a
    nearest-class-mean colour classifier gains accuracy when the noise goes."""

    def colour_accuracy(folder):
        ds = data.read_cifar_folder(folder)
        colour = ds.train.images.float().mean(dim=(2, 3))
        centres = torch.stack([colour[ds.train.labels == c].mean(0) for c in range(10)])
        return (torch.cdist(colour, centres).argmin(1) == ds.train.labels).float().mean().item()

    hard = data.make_synthetic(tmp_path / "hard", train=500, test=20, seed=0)
    easy = data.make_synthetic(tmp_path / "easy", train=500, test=20, seed=0, noise=0.1, distractor=0.0)
    assert colour_accuracy(easy) > colour_accuracy(hard) + 0.1


def test_cifar10_root_expands_the_home_directory(synthetic_dir, monkeypatch):
    monkeypatch.setenv("HOME", str(synthetic_dir.parent))
    ds = data.load_data({"dataset": "cifar10", "root": f"~/{synthetic_dir.name}"})
    assert ds.info["root"] == str(synthetic_dir)


def _find_crop(padded, out):
    """(dy, dx, flipped) such that out is that crop of padded, or None."""
    for dy in range(9):
        for dx in range(9):
            crop = padded[:, dy : dy + 32, dx : dx + 32]
            if torch.equal(crop, out):
                return dy, dx, False
            if torch.equal(crop.flip(2), out):
                return dy, dx, True
    return None


def test_augment_is_a_padded_random_crop_and_flip_per_image():
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8, generator=gen)
    out = data.augment(images, torch.Generator().manual_seed(1))
    assert out.shape == images.shape and out.dtype == torch.uint8
    padded = torch.nn.functional.pad(images, (4, 4, 4, 4))
    found = [_find_crop(padded[i], out[i]) for i in range(len(images))]
    assert None not in found
    flips = sum(f[2] for f in found)
    offsets = {(f[0], f[1]) for f in found}
    assert 16 <= flips <= 48  # p = 0.5 over 64 images
    assert len(offsets) > 20  # offsets spread over the 9x9 choices
    assert any(f[:2] != (4, 4) for f in found)


def test_augment_is_reproducible_from_the_generator_seed():
    images = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8)
    a = data.augment(images, torch.Generator().manual_seed(5))
    b = data.augment(images, torch.Generator().manual_seed(5))
    assert torch.equal(a, b)


def test_normalise_uses_the_study_mean_and_std():
    images = torch.full((1, 3, 2, 2), 255, dtype=torch.uint8)
    x = data.normalise(images)
    expected = [(1 - m) / s for m, s in zip(data.MEAN, data.STD, strict=True)]
    torch.testing.assert_close(x[0, :, 0, 0], torch.tensor(expected))
    assert data.normalise(images, channels_last=True).is_contiguous(memory_format=torch.channels_last)


def test_hold_out_is_disjoint_fixed_and_sized(synthetic_dir):
    ds = data.read_cifar_folder(synthetic_dir)
    rest, val = data.hold_out(ds.train, 30)
    assert len(val) == 30 and len(rest) == 170
    rest2, val2 = data.hold_out(ds.train, 30)
    assert torch.equal(val.images, val2.images)
    pool = {img.numpy().tobytes() for img in ds.train.images}
    assert {img.numpy().tobytes() for img in val.images} | {img.numpy().tobytes() for img in rest.images} == pool
    with pytest.raises(InvalidTask, match="val_split must be between 1 and 199"):
        data.hold_out(ds.train, 200)


def test_epochs_drop_only_a_last_batch_of_one_image():
    assert data.steps_per_epoch(130, 64) == 3  # 64 + 64 + 2
    assert data.steps_per_epoch(129, 64) == 2  # the single leftover image would break batch norm
    assert data.steps_per_epoch(1000, 64, max_steps=5) == 5
    split = data.Split(torch.zeros(129, 3, 32, 32, dtype=torch.uint8), torch.arange(129) % 10)
    sizes = [len(y) for _, y in data.shuffled_batches(split, 64, torch.Generator().manual_seed(0))]
    assert sizes == [64, 64]
