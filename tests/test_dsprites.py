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
