import gzip
import struct
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.data import load_dataset
from gankit.errors import GankitError


def save_png(path, array, mode=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, dtype=np.uint8), mode).save(path)
    return path


def gray(value, h=6, w=6):
    return np.full((h, w), value, dtype=np.uint8)


# ------------------------------------------------------------------------------ folders


def test_folder_grayscale_unlabeled(tmp_path):
    for i in range(10):
        save_png(tmp_path / f"img{i}.png", gray(i * 20))
    full = load_dataset(f"folder:{tmp_path}", "all")
    assert full.shape == (1, 6, 6) and len(full) == 10 and full.y is None
    assert full.n_classes == 0 and (full.low, full.high) == (0.0, 255.0)
    # Files in sorted order; pixel v maps to v / 127.5 - 1 and back.
    torch.testing.assert_close(full.unit()[:, 0, 0, 0], torch.arange(10) * 20 / 127.5 - 1)
    np.testing.assert_allclose(full.denormalize(full.unit())[:, 0, 0, 0], np.arange(10) * 20,
                               atol=1e-4)
    train, val = (load_dataset(f"folder:{tmp_path}", s) for s in ("train", "val"))
    assert (len(train), len(val)) == (9, 1)
    values = sorted(torch.cat([train.unit(), val.unit()])[:, 0, 0, 0].tolist())
    assert values == sorted(full.unit()[:, 0, 0, 0].tolist())


def test_folder_any_color_image_makes_all_rgb(tmp_path):
    save_png(tmp_path / "a.png", gray(200))
    color = np.zeros((6, 6, 3), dtype=np.uint8)
    color[..., 0] = 255
    save_png(tmp_path / "b.png", color)
    Image.fromarray(gray(0)).save(tmp_path / "c.jpg")
    ds = load_dataset(f"folder:{tmp_path}", "all")
    assert ds.shape == (3, 6, 6) and len(ds) == 3
    gray_as_rgb = ds.unit()[0]  # gray -> equal RGB
    assert gray_as_rgb.amax() == gray_as_rgb.amin() == pytest.approx(200 / 127.5 - 1)
    assert ds.unit()[1, :, 0, 0].tolist() == [1.0, -1.0, -1.0]


def test_folder_subfolders_become_sorted_classes(tmp_path):
    for cls, value in [("zebra", 10), ("ant", 200)]:
        for i in range(3):
            save_png(tmp_path / cls / "nested" / f"{i}.png", gray(value))
    ds = load_dataset(f"folder:{tmp_path}", "all")
    assert ds.n_classes == 2
    # "ant" sorts first: class 0 is the bright images, class 1 the dark ones.
    assert ds.y.tolist() == [0, 0, 0, 1, 1, 1]
    assert (ds.unit()[ds.y == 0] > 0).all() and (ds.unit()[ds.y == 1] < 0).all()


def test_folder_image_size_center_crops_then_resizes(tmp_path):
    wide = np.zeros((8, 16), dtype=np.uint8)
    wide[:, 4:12] = 255  # the centre square is white, the side bands black
    save_png(tmp_path / "wide.png", wide)
    save_png(tmp_path / "small.png", gray(255, 3, 3))
    ds = load_dataset(f"folder:{tmp_path}", "all", image_size=4)
    assert ds.shape == (1, 4, 4)
    torch.testing.assert_close(ds.unit(), torch.ones(2, 1, 4, 4))


def test_folder_skips_hidden_files_and_non_images(tmp_path):
    save_png(tmp_path / "a.png", gray(9))
    (tmp_path / "._a.png").write_bytes(b"macOS resource fork, not an image")
    (tmp_path / ".cache").mkdir()
    (tmp_path / ".cache" / "b.png").write_bytes(b"junk")
    (tmp_path / "labels.csv").write_text("a,1")
    assert len(load_dataset(f"folder:{tmp_path}", "all")) == 1


@pytest.mark.parametrize(
    ("make", "kwargs", "match"),
    [
        (lambda p: (p / "x.png").write_bytes(b"garbage, not a png"), {},
         r"cannot read image .*x\.png"),
        (lambda p: (save_png(p / "a.png", gray(1, 4, 4)), save_png(p / "b.png", gray(1, 5, 4))),
         {}, r"different sizes .*a\.png.*b\.png.*pass an image size"),
        (lambda p: (p / "notes.txt").write_text("hi"), {}, "no images"),
        (lambda p: None, {"path": "missing"}, "does not exist"),
        (lambda p: (p / "file.png").write_bytes(b""), {"path": "file.png"}, "not a folder"),
        (lambda p: (save_png(p / "top.png", gray(1)), save_png(p / "cls" / "b.png", gray(1))),
         {}, r"both in class subfolders and at its top level .*top\.png"),
        (lambda p: save_png(p / "only.png", gray(1)), {"split": "val"}, "too few to hold out"),
    ],
    ids=["corrupt", "mixed-sizes", "empty", "missing", "not-dir", "loose-top-level", "one-image"],
)
def test_folder_errors(tmp_path, make, kwargs, match):
    make(tmp_path)
    target = tmp_path / kwargs.pop("path", "")
    with pytest.raises(GankitError, match=match):
        load_dataset(f"folder:{target}", **kwargs)


def test_folder_truncated_image_names_file(tmp_path):
    save_png(tmp_path / "ok.png", gray(3))
    data = save_png(tmp_path / "cut.png", np.random.default_rng(0).integers(0, 255, (6, 6)))
    data.write_bytes(data.read_bytes()[:-30])  # header intact, pixel data cut short
    with pytest.raises(GankitError, match=r"cut\.png"):
        load_dataset(f"folder:{tmp_path}", "all")


# ---------------------------------------------------------------------------------- npz


@pytest.mark.parametrize(
    ("shape", "to_nchw"),
    [
        ((12, 5, 7), lambda a: a[:, None]),
        ((12, 5, 7, 3), lambda a: a.transpose(0, 3, 1, 2)),
        ((12, 5, 7, 1), lambda a: a.transpose(0, 3, 1, 2)),
        ((12, 3, 5, 7), lambda a: a),
        ((12, 1, 5, 7), lambda a: a),
        ((12, 3, 5, 3), lambda a: a),  # ambiguous: channel-first wins
    ],
)
def test_npz_image_layouts(tmp_path, shape, to_nchw):
    x = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    np.savez(tmp_path / "d.npz", x=x)
    ds = load_dataset(f"npz:{tmp_path / 'd.npz'}", "all")
    expect = to_nchw(x)
    assert ds.shape == expect.shape[1:] and len(ds) == 12 and ds.kind == "image"
    assert (ds.low, ds.high) == (0.0, 255.0) and ds.y is None
    np.testing.assert_allclose(ds.denormalize(ds.unit()), expect, atol=1e-4)


def test_npz_float_range_and_labels(tmp_path):
    x = np.linspace(-3.0, 5.0, 10 * 4).reshape(10, 2, 2)  # not called "x": first array is used
    y = np.arange(10) % 4
    np.savez(tmp_path / "f.npz", images=x, y=y)
    ds = load_dataset(f"npz:{tmp_path / 'f.npz'}", "all")
    assert (ds.low, ds.high) == (-3.0, 5.0) and ds.n_classes == 4
    assert float(ds.x.min()) == -1.0 and float(ds.x.max()) == 1.0
    np.testing.assert_allclose(ds.denormalize(ds.x)[:, 0], x, atol=1e-5)
    assert ds.y.tolist() == y.tolist()
    train, val = (load_dataset(f"npz:{tmp_path / 'f.npz'}", s) for s in ("train", "val"))
    assert (len(train), len(val)) == (9, 1) and (train.low, val.high) == (-3.0, 5.0)


def test_npz_points(tmp_path):
    pts = np.random.default_rng(1).normal(size=(20, 2)) * 7
    np.savez(tmp_path / "p.npz", x=pts)
    ds = load_dataset(f"npz:{tmp_path / 'p.npz'}", "all")
    assert ds.kind == "points" and ds.shape == (2,)
    np.testing.assert_allclose(ds.x.numpy(), pts, rtol=1e-6)


def _npz(p, **arrays):
    np.savez(p / "d.npz", **arrays)


def _zip(p):
    with zipfile.ZipFile(p / "d.npz", "w") as z:
        z.writestr("readme.txt", "not an array")


def _npy(p, array):
    with open(p / "d.npz", "wb") as f:  # np.save(path) would append ".npy" to the name
        np.save(f, array)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda p: None, "does not exist"),
        (lambda p: (p / "d.npz").write_bytes(b"PK\x03\x04 broken zip"), "cannot read"),
        (lambda p: (p / "d.npz").write_bytes(b"plain garbage"), "cannot read"),
        (lambda p: _zip(p), "not a numpy .npz"),
        (lambda p: _npy(p, np.zeros((3, 4, 4))), r"single \.npy"),
        (lambda p: _npz(p), "holds no arrays"),
        (lambda p: _npz(p, y=np.arange(3)), "only labels"),
        (lambda p: _npz(p, x=np.zeros((3, 5))), r"has shape \(3, 5\)"),
        (lambda p: _npz(p, x=np.zeros((3, 4, 4, 5))), "C = 1 or 3"),
        (lambda p: _npz(p, x=np.array([[[np.nan]]] * 3)), "NaN or Inf"),
        (lambda p: _npz(p, x=np.array([[[np.inf]]] * 3)), "NaN or Inf"),
        (lambda p: _npz(p, x=np.zeros((0, 4, 4))), "is empty"),
        (lambda p: _npz(p, x=np.zeros((3, 4, 4)), y=np.arange(4)), "4 labels 'y' for 3 samples"),
        (lambda p: _npz(p, x=np.zeros((3, 4, 4)), y=np.ones(3)), "1-D integer"),
        (lambda p: _npz(p, x=np.array(["a", "b"])), "dtype"),
    ],
    ids=["missing", "corrupt-zip", "not-zip", "zip-not-npz", "npy", "no-arrays", "only-y",
         "bad-shape", "bad-channels", "nan", "inf", "empty", "label-count", "float-labels",
         "strings"],
)
def test_npz_errors(tmp_path, make, match):
    make(tmp_path)
    with pytest.raises(GankitError, match=match):
        load_dataset(f"npz:{tmp_path / 'd.npz'}", "all")


# ------------------------------------------------------------------------------ mnist idx


def idx_bytes(array, magic):
    dims = b"".join(struct.pack(">I", d) for d in array.shape)
    return struct.pack(">I", magic) + dims + array.astype(np.uint8).tobytes()


def write_mnist(root, n_train=6, n_val=4, gz=False, skip=()):
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": (rng.integers(0, 256, (n_train, 5, 4)), 0x803),
        "train-labels-idx1-ubyte": (np.arange(n_train) % 10, 0x801),
        "t10k-images-idx3-ubyte": (rng.integers(0, 256, (n_val, 5, 4)), 0x803),
        "t10k-labels-idx1-ubyte": (np.arange(n_val) % 3, 0x801),
    }
    for name, (a, magic) in arrays.items():
        if name in skip:
            continue
        data = idx_bytes(a, magic)
        if gz:
            (root / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (root / name).write_bytes(data)
    return {k: v[0] for k, v in arrays.items()}


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_idx_splits(tmp_path, gz):
    arrays = write_mnist(tmp_path, gz=gz)
    train = load_dataset(f"mnist-idx:{tmp_path}", "train")
    val = load_dataset(f"mnist-idx:{tmp_path}", "val")
    assert train.shape == (1, 5, 4) and (len(train), len(val)) == (6, 4)
    np.testing.assert_allclose(train.denormalize(train.unit())[:, 0],
                               arrays["train-images-idx3-ubyte"], atol=1e-4)
    assert val.y.tolist() == arrays["t10k-labels-idx1-ubyte"].tolist()
    full = load_dataset(f"mnist-idx:{tmp_path}", "all")
    assert len(full) == 10 and torch.equal(full.x[6:], val.x)
    assert load_dataset(f"mnist-idx:{tmp_path}", "val", image_size=4).shape == (1, 4, 4)


def _corrupt(root, name, fn):
    write_mnist(root)
    (root / name).write_bytes(fn((root / name).read_bytes()))


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda p: write_mnist(p, skip={"train-labels-idx1-ubyte"}),
         "missing MNIST file 'train-labels-idx1-ubyte'"),
        (lambda p: _corrupt(p, "train-images-idx3-ubyte", lambda b: b[:-7]),
         r"train-images-idx3-ubyte' is truncated"),
        (lambda p: _corrupt(p, "train-images-idx3-ubyte", lambda b: b + b"\0"),
         "longer than its header"),
        (lambda p: _corrupt(p, "train-labels-idx1-ubyte", lambda b: b[:3]), "truncated"),
        (lambda p: _corrupt(p, "train-images-idx3-ubyte", lambda b: b"\0\0\x08\x01" + b[4:]),
         "magic number 0x00000801"),
        (lambda p: _corrupt(p, "train-labels-idx1-ubyte", lambda b: idx_bytes(np.arange(5), 0x801)),
         "6 images but 'train-labels-idx1-ubyte' has 5 labels"),
        (lambda p: (p / "train-images-idx3-ubyte.gz").write_bytes(b"not gzip"), "cannot read"),
    ],
    ids=["missing", "truncated", "too-long", "short-header", "bad-magic", "count", "bad-gzip"],
)
def test_mnist_idx_errors(tmp_path, make, match):
    make(tmp_path)
    with pytest.raises(GankitError, match=match):
        load_dataset(f"mnist-idx:{tmp_path}", "train")


def test_mnist_idx_missing_folder(tmp_path):
    with pytest.raises(GankitError, match="does not exist"):
        load_dataset(f"mnist-idx:{tmp_path / 'nope'}")
