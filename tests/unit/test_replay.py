"""The replay's offset range, read from the topic's end offsets before and after it."""

import pytest

from include.replay import one_ahead, produced_range


def ends(*snapshots):
    """end_offsets() returning each snapshot in turn (the last one from then on)."""
    calls = iter(snapshots)
    last = {}

    def end_offsets():
        nonlocal last
        last = next(calls, last)
        return last

    return end_offsets


def test_the_range_is_what_moved_in_each_partition():
    before = {0: 100, 1: 7, 2: 0}
    assert produced_range(before, ends({0: 130, 1: 7, 2: 5}), 35) == {0: (100, 130), 2: (0, 5)}


def test_a_partition_created_since_counts_from_zero():
    assert produced_range({0: 3}, ends({0: 3, 1: 4}), 4) == {1: (0, 4)}


def test_a_trailing_high_watermark_is_waited_for():
    assert produced_range({0: 0}, ends({0: 8}, {0: 9}, {0: 10}), 10) == {0: (0, 10)}


def test_another_producer_in_the_range_fails_the_try():
    with pytest.raises(RuntimeError, match="another producer wrote to the topic"):
        produced_range({0: 0}, ends({0: 12}), 10)


def test_a_lost_message_fails_the_try_after_waiting():
    with pytest.raises(RuntimeError, match="messages were lost"):
        produced_range({0: 0}, ends({0: 9}), 10, wait=0.5)


def test_one_ahead_keeps_order_and_computes_each_item_once():
    seen = []

    def work(item):
        seen.append(item)
        return item * 2

    assert list(one_ahead(range(5), work)) == [0, 2, 4, 6, 8]
    assert sorted(seen) == [0, 1, 2, 3, 4]
    assert list(one_ahead([], work)) == []
