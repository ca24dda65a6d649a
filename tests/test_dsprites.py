"""The procedural dSprites (training/dsprites.py): its factor counts, geometry and determinism."""
from __future__ import annotations

import numpy as np

from training import dsprites as ds


def test_every_combination_once_with_the_published_counts():
    assert ds.COUNTS == (3, 6, 40, 32, 32) and ds.n_images() == 737_280
    idx = np.arange(0, ds.n_images(), 997)
    f = ds.index_to_factors(idx)
    np.testing.assert_array_equal(ds.factors_to_index(f), idx)
    every = ds.index_to_factors(np.arange(ds.n_images()))
    for k, c in enumerate(ds.COUNTS):
        counts = np.bincount(every[:, k], minlength=c)
        assert len(counts) == c and (counts == ds.n_images() // c).all()


def centroid(img: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(img)
    return np.array([xs.mean(), ys.mean()])


def test_a_step_in_position_x_moves_the_sprite_one_pixel_and_nothing_else():
    for shape in range(3):
        base = np.array([[shape, 3, 7, 5, 9]])
        moved = base.copy()
        moved[0, 3] += 4
        a, b = ds.render(base)[0], ds.render(moved)[0]
        np.testing.assert_allclose(centroid(b) - centroid(a), [4.0, 0.0], atol=1e-9)
        assert (a > 0).sum() == (b > 0).sum() > 30
        np.testing.assert_array_equal(np.roll(a, 4, axis=1), b)  # the same pixels, shifted


def test_a_square_turned_a_quarter_is_the_same_square():
    for scale in range(6):
        for orient in range(30):
            a = ds.render([[0, scale, orient, 10, 20]])[0]
            b = ds.render([[0, scale, orient + 10, 10, 20]])[0]
            np.testing.assert_array_equal(a, b)
    heart = ds.render([[2, 5, 0, 10, 20], [2, 5, 10, 10, 20]])
    assert (heart[0] != heart[1]).any()  # a heart is not symmetric under a quarter turn


def test_images_are_binary_deterministic_and_the_shapes_differ():
    a, fa = ds.sample(64, seed=3)
    b, fb = ds.sample(64, seed=3)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(fa, fb)
    assert a.dtype == np.uint8 and set(np.unique(a)) <= {0, 255} and a.shape == (64, 64, 64)
    square, ellipse, heart = ds.render([[s, 5, 0, 15, 15] for s in range(3)])
    assert len({square.tobytes(), ellipse.tobytes(), heart.tobytes()}) == 3
    area = [(x > 0).sum() for x in (square, ellipse, heart)]
    assert area[0] > area[2] > area[1] > 0
    small, big = ds.render([[0, 0, 0, 15, 15], [0, 5, 0, 15, 15]])
    assert 0.2 < (small > 0).sum() / (big > 0).sum() < 0.3  # scale 0.5 vs 1: a quarter of the area


# ---- the 32x32 variant the shipped models train on, and the dataset source --------------------------------------
def test_the_32_pixel_variant_keeps_the_factors_with_16_positions():
    assert ds.counts(32) == (3, 6, 40, 16, 16) and ds.n_images(32) == 184_320
    for shape in range(3):
        base = np.array([[shape, 4, 3, 5, 7]])
        moved = base.copy()
        moved[0, 3] += 3
        a, b = ds.render_at(base, 32)[0], ds.render_at(moved, 32)[0]
        assert a.shape == (32, 32) and set(np.unique(a)) <= {0, 64, 128, 191, 255}
        np.testing.assert_array_equal(np.roll(a, 3, axis=1), b)  # a position step is one pixel here too
        big = ds.render([[shape, 4, 3, 10, 14]])[0].astype(np.float64)  # the same sprite at 64x64 (2p, 2q)
        np.testing.assert_allclose(a, big.reshape(32, 2, 32, 2).mean((1, 3)), atol=0.51)
    try:
        ds.counts(48)
    except ValueError as e:
        assert "32x32" in str(e)
    else:
        raise AssertionError("48 pixels accepted")


def test_render_all_equals_render_image_by_image():
    for size in (32, 64):
        every = ds.render_all(size) if size == 32 else None
        idx = np.random.default_rng(size).integers(0, ds.n_images(size), 200)
        if every is None:  # 64x64: 3 GB; check the shift trick on one (shape, scale, orientation) block
            block = ds.counts(64)[3] * ds.counts(64)[4]
            first = ds.factors_to_index([[2, 5, 37, 0, 0]])[0]
            tiles = np.stack([np.roll(np.roll(ds.render([[2, 5, 37, 0, 0]])[0], x, 1), y, 0)
                              for x in range(32) for y in range(32)])
            np.testing.assert_array_equal(tiles[idx % block], ds.images(first + idx % block))
            continue
        np.testing.assert_array_equal(every[idx], ds.images(idx, size))


def test_the_dsprites_source_carries_the_factor_matrix():
    from training import data, sources

    d = sources.read("dsprites")
    assert d.name == "dsprites" and d.images.shape == (184_320, 32, 32) and d.factor_names == list(ds.FACTORS)
    np.testing.assert_array_equal(d.factors, ds.index_to_factors(np.arange(len(d.images)), 32))
    np.testing.assert_array_equal(d.labels, d.factors[:, 0])  # the class is the shape
    assert d.class_names == ["square", "ellipse", "heart"] and "32x32" in d.notes[0]
    info = data.dataset_info("dsprites")
    assert info["factors"] == {"names": list(ds.FACTORS), "counts": [3, 6, 40, 16, 16]}
    assert info["pair"] == ["ae-10", "vae-10"] and info["preprocess"] == "photo"
    test_images, _ = data.load_split("dsprites", ".", train=False)
    test_factors = data.load_factors("dsprites", train=False)
    np.testing.assert_array_equal(test_images.numpy()[:50], ds.render_at(test_factors[:50], 32))
    assert data.load_factors("mnist", train=False) is None
    for bad in ("dsprites:48", "dsprites:x"):
        try:
            sources.parse(bad)
        except sources.SourceError as e:
            assert "32 or 64" in str(e)
        else:
            raise AssertionError(f"{bad} accepted")


def test_an_npz_with_factors(tmp_path):
    from training import sources

    images, factors = ds.sample(120, seed=1, size=32)
    np.savez(tmp_path / "f.npz", images=images, factors=factors, factor_names=np.array(ds.FACTORS))
    d = sources.read(f"npz:{tmp_path / 'f.npz'}")
    np.testing.assert_array_equal(d.factors, factors)
    assert d.factor_names == list(ds.FACTORS)
    np.savez(tmp_path / "bad.npz", images=images, factors=factors[:5])
    try:
        sources.read(f"npz:{tmp_path / 'bad.npz'}")
    except sources.SourceError as e:
        assert "'factors' must be" in str(e)
    else:
        raise AssertionError("mismatched factors accepted")
