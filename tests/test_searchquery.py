"""The message search syntax (linkup/core/searchquery.py): parsed once, written for each
database so that no character a person types is ever the database's syntax."""

from __future__ import annotations

import itertools
import sqlite3

from hypothesis import given, settings
from hypothesis import strategies as st

from linkup.core import searchquery
from linkup.core.searchquery import Term

# -- parsing -------------------------------------------------------------------------


def test_parse_reads_words_phrases_exclusions_and_or() -> None:
    assert searchquery.parse('kab "zot  mup" -fen or -"dax lor" vim') == (
        (Term("kab"), Term("zot mup", phrase=True), Term("fen", negated=True)),
        (Term("dax lor", negated=True, phrase=True), Term("vim")),
    )
    assert searchquery.parse("OR or kab oR") == ((Term("kab"),),)
    assert searchquery.parse("-kab") == ()  # exclusions alone find nothing
    assert searchquery.parse('!!! "" - * ( )') == ()
    assert searchquery.parse('"unclosed phrase') == ((Term("unclosed phrase", phrase=True),),)


def test_each_backend_gets_the_query_in_its_own_syntax() -> None:
    parsed = searchquery.parse('kab "zot mup" -fen or vim')
    assert searchquery.fts5_query(parsed) == ('(("kab" AND "zot mup") NOT "fen") OR ("vim")')
    assert searchquery.websearch_query(parsed) == 'kab "zot mup" -"fen" or vim'
    # A quote inside a word is FTS5's string syntax doubled, websearch's dropped.
    tricky = searchquery.parse('ab"c')
    assert tricky == ((Term("ab"), Term("c", phrase=True)),)
    assert searchquery.fts5_query(searchquery.parse("NEAR(a b) AND x*")) == (
        '("NEAR(a" AND "b)" AND "AND" AND "x*")'
    )


_fts = sqlite3.connect(":memory:")
_fts.execute(
    "CREATE VIRTUAL TABLE t USING fts5(body, tokenize='porter unicode61 remove_diacritics 2')"
)
_fts.execute("INSERT INTO t(body) VALUES ('kab zot mup and some NEAR text')")


@settings(max_examples=300)
@given(st.text(max_size=60))
def test_no_text_is_fts5_syntax_or_breaks_a_query(text: str) -> None:
    """Whatever a person types, FTS5 gets a valid expression, and reading the normalised
    websearch form back means the same."""
    parsed = searchquery.parse(text)
    expression = searchquery.fts5_query(parsed)
    if parsed:
        _fts.execute("SELECT rowid FROM t WHERE t MATCH ?", [expression]).fetchall()
    else:
        assert expression == ""
    assert searchquery.parse(searchquery.websearch_query(parsed)) == tuple(
        tuple(
            Term(" ".join(t.text.replace('"', " ").split()), t.negated, t.phrase or t.negated)
            for t in group
        )
        for group in parsed
    )


@settings(max_examples=200)
@given(st.lists(st.tuples(st.booleans(), st.text(min_size=1, max_size=5)), max_size=8))
def test_split_marked_gives_the_text_and_where_the_marks_were(
    parts: list[tuple[bool, str]],
) -> None:
    parts = [(hit, text.replace("\x02", "").replace("\x03", "")) for hit, text in parts]
    marked = "".join(f"\x02{t}\x03" if hit else t for hit, t in parts)
    text, spans = searchquery.split_marked(marked)
    assert text == "".join(t for _, t in parts)
    covered = {i for start, end in spans for i in range(start, end)}
    offset, expected = 0, set()
    for hit, t in parts:
        if hit:
            expected |= set(range(offset, offset + len(t)))
        offset += len(t)
    assert covered == expected
    assert all(a[1] < b[0] for a, b in itertools.pairwise(spans))  # merged, ordered
