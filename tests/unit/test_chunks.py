"""db/chunks.in_chunks: the one way long id lists are split into bounded IN (...) lists."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from partnerpay.db.chunks import IN_LIST_SIZE, in_chunks


class TestInChunks:
    @given(values=st.lists(st.integers(), max_size=60), size=st.integers(min_value=1, max_value=25))
    def test_the_chunks_are_the_values_in_order_none_over_size_only_the_last_shorter(
        self, values: list[int], size: int
    ) -> None:
        chunks = list(in_chunks(values, size))
        assert [v for chunk in chunks for v in chunk] == values
        assert all(len(chunk) == size for chunk in chunks[:-1])
        assert all(0 < len(chunk) <= size for chunk in chunks)

    def test_the_default_size_keeps_far_under_sqlites_oldest_limit_of_999(self) -> None:
        chunks = list(in_chunks([str(n) for n in range(1201)]))
        assert [len(c) for c in chunks] == [IN_LIST_SIZE, IN_LIST_SIZE, 1201 - 2 * IN_LIST_SIZE]
        assert IN_LIST_SIZE < 999

    def test_an_empty_list_gives_no_chunk_so_no_statement_is_made(self) -> None:
        assert list(in_chunks([])) == []

    def test_a_size_below_one_is_refused(self) -> None:
        with pytest.raises(ValueError, match="at least one"):
            list(in_chunks([1, 2], 0))
