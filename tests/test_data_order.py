from __future__ import annotations

import numpy as np
import pytest

from aekit.data.order import BlockLayout, block_order, choose_order, sorted_windows
from aekit.data.quality import class_mix_distance, random_batch_distance

# 1003 rows in chunks of 100 rows cut into blocks of 34 (34 + 34 + 32 per chunk)
LAYOUT = BlockLayout.for_rows(1003, 100, row_bytes=8, block_bytes=272)


def test_blocks_cover_the_rows_once_and_never_cross_a_chunk():
    assert LAYOUT.block_rows == 34 and LAYOUT.per_chunk == 3
    start, stop = LAYOUT.bounds(np.arange(LAYOUT.n_blocks))
    np.testing.assert_array_equal(start[1:], stop[:-1])
    assert start[0] == 0 and stop[-1] == 1003 and np.all(stop > start)
    assert np.all((stop - 1) // 100 == start // 100)
    rows = np.arange(1003)
    block = LAYOUT.block_of(rows)
    assert np.all((start[block] <= rows) & (rows < stop[block]))


def test_block_order_is_a_seeded_permutation_read_window_by_window():
    # A validation-like hole every 7th row: windows hold only the served rows of their blocks
    index = np.setdiff1d(np.arange(1003), np.arange(0, 1003, 7))
    order, ends = block_order(index, LAYOUT, 4, seed=3, epoch=2)
    np.testing.assert_array_equal(np.sort(order), index)
    again, _ = block_order(index[::-1], LAYOUT, 4, seed=3, epoch=2)
    np.testing.assert_array_equal(order, again)
    assert not np.array_equal(order, block_order(index, LAYOUT, 4, seed=3, epoch=3)[0])
    assert ends[-1] == len(index) and np.all(np.diff(ends) > 0)
    seen: set[int] = set()
    for window in np.split(order, ends[:-1]):
        blocks = set(LAYOUT.block_of(window).tolist())
        assert len(blocks) <= 4 and not blocks & seen  # each block is read in one window only
        seen |= blocks
        # Rows are shuffled within the window, not served block after block
        assert np.any(np.diff(LAYOUT.block_of(window)) < 0)
    assert len(seen) == LAYOUT.n_blocks


def test_sorted_rows_are_windowed_by_the_blocks_they_use():
    rows = np.arange(0, 1003, 5)
    windows = sorted_windows(rows, LAYOUT, 2)
    assert np.all(np.diff(windows) >= 0)
    for w in np.unique(windows):
        assert len(np.unique(LAYOUT.block_of(rows[windows == w]))) <= 2


@pytest.mark.parametrize(
    ("store", "available", "mode"),
    [(1 << 30, 4 << 30, "global"), (3 << 30, 4 << 30, "block"), (1 << 20, None, "block")],
)
def test_choose_order_keeps_the_global_shuffle_for_stores_that_stay_cached(store, available, mode):
    chosen, reason = choose_order(store, available)
    assert chosen == mode and reason.startswith(mode) and "\n" not in reason


def test_class_mix_distance_is_zero_for_perfect_batches_and_one_for_pure_ones():
    perfect = [np.arange(4)] * 5
    assert class_mix_distance(perfect, 4) == 0
    pure = [np.full(4, c) for c in range(4)]
    assert class_mix_distance(pure, 4) == pytest.approx(0.75)
    # The remainder batch counts in the overall mix but is not measured
    assert class_mix_distance([*perfect, np.array([0])], 4) == pytest.approx(
        0.5 * (6 / 21 - 0.25 + 3 * (0.25 - 5 / 21))
    )


def test_random_batch_distance_matches_sampling():
    freq = np.full(10, 0.1)
    rng = np.random.default_rng(0)
    draws = [rng.choice(10, 256, p=freq) for _ in range(2000)]
    expected = random_batch_distance(freq, 256)
    assert class_mix_distance(draws, 10) == pytest.approx(expected, rel=0.05)
    assert random_batch_distance(freq, 256, window_blocks=32) > expected
