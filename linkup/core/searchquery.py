"""Message search queries: the web-search syntax people type, parsed once, spoken to each
database in its own terms.

The syntax is PostgreSQL's `websearch_to_tsquery`: words (all must match), `"quoted
phrases"`, `-word` and `-"a phrase"` (must not match), and `or` between terms. Both
backends get the same parse, so they agree on what a query means:

- PostgreSQL gets it back in that syntax, normalised (`websearch_query`), for
  `websearch_to_tsquery`, which never fails on any input;
- SQLite gets an FTS5 expression (`fts5_query`) in which every term is a quoted FTS5
  string, so no character a person types is ever FTS5 syntax.

A group of only exclusions ("-spam") finds nothing on either (it would otherwise ask the
database for every message that lacks a word). Snippets come back from the database with
the matched words between two control characters, which a message body can never hold
(`linkup.core.protocol.check_message_body` refuses them); `split_marked` turns that into
plain text and the code-point ranges to highlight.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

# Around each matched word in a snippet, as the database returns it.
MARK_START, MARK_END = "\x02", "\x03"


@dataclass(frozen=True, slots=True)
class Term:
    text: str  # a word, or a phrase's words separated by single spaces
    negated: bool = False
    phrase: bool = False


# OR of groups; each group is an AND of its terms.
Query = tuple[tuple[Term, ...], ...]


def _has_token(text: str) -> bool:
    """Whether `text` holds anything a tokenizer keeps (a letter or a digit)."""
    return any(char.isalnum() for char in text)


def _lex(text: str) -> list[tuple[str, bool, bool]]:
    """(text, negated, quoted) for each term, in order. A quote runs to the next quote
    (or the end); a `-` right before a term negates it; whitespace separates terms."""
    items: list[tuple[str, bool, bool]] = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        negated = False
        if text[i] == "-" and i + 1 < n and not text[i + 1].isspace():
            negated, i = True, i + 1
        if text[i] == '"':
            end = text.find('"', i + 1)
            end = n if end < 0 else end
            items.append((text[i + 1 : end], negated, True))
            i = end + 1
            continue
        start = i
        while i < n and not text[i].isspace() and text[i] != '"':
            i += 1
        items.append((text[start:i], negated, False))
    return items


def parse(text: str) -> Query:
    """The query `text` means: groups joined by OR, each holding at least one term that must
    match. Terms without a letter or digit are dropped, and so are groups left with no term
    that must match."""
    # Control characters and lone surrogates (which no database takes) separate words.
    text = "".join(" " if unicodedata.category(c) in ("Cc", "Cs") else c for c in text)
    groups: list[list[Term]] = [[]]
    for raw, negated, quoted in _lex(text):
        if not quoted and not negated and raw.lower() == "or":
            if groups[-1]:
                groups.append([])
            continue
        if not _has_token(raw):
            continue
        words = " ".join(raw.split())
        groups[-1].append(Term(words, negated=negated, phrase=quoted))
    return tuple(tuple(group) for group in groups if any(not term.negated for term in group))


def _fts5_string(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def fts5_query(query: Query) -> str:
    """An FTS5 MATCH expression for `query` ("" when it can match nothing)."""
    alternatives = []
    for group in query:
        must = " AND ".join(_fts5_string(t.text) for t in group if not t.negated)
        expression = f"({must})"
        for term in group:
            if term.negated:
                expression = f"({expression} NOT {_fts5_string(term.text)})"
        alternatives.append(expression)
    return " OR ".join(alternatives)


def _websearch_term(term: Term) -> str:
    # Inside quotes nothing but a quote is special, and none is left in the text.
    text = term.text.replace('"', " ")
    written = f'"{text}"' if term.phrase or term.negated else text
    return ("-" if term.negated else "") + written


def websearch_query(query: Query) -> str:
    """`query` in websearch_to_tsquery's syntax, normalised ("" when it can match nothing)."""
    return " or ".join(" ".join(_websearch_term(t) for t in group) for group in query)


def split_marked(marked: str) -> tuple[str, list[tuple[int, int]]]:
    """Plain text and the [start, end) code-point ranges between the markers."""
    text: list[str] = []
    spans: list[tuple[int, int]] = []
    start: int | None = None
    length = 0
    for char in marked:
        if char == MARK_START:
            start = length
        elif char == MARK_END:
            if start is not None and length > start:
                if spans and spans[-1][1] == start:  # adjacent words: one range
                    spans[-1] = (spans[-1][0], length)
                else:
                    spans.append((start, length))
            start = None
        else:
            text.append(char)
            length += 1
    return "".join(text), spans
