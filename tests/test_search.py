"""Message search (issue 19): the query syntax, the database's full-text index on both
configurations, and `GET /api/v1/search`.

The invariant, checked by Hypothesis against a model: the hits of any query, paged through
with `next`, are exactly the messages of the searcher's rooms that are not deleted (for
everyone, or by the searcher for themselves) and whose current text holds every word asked
for, newest first, each once."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import re
import uuid
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st

from linkup.actions.changes import do_delete_message, do_edit_message
from linkup.actions.messages import Send, do_send_batch, index_due
from linkup.actions.rooms import do_create_room
from linkup.core.conf import setting
from linkup.core.errors import InvalidInput, NotFound
from linkup.store import search, searchindex
from tests.conftest import make_user
from tests.test_api import Api, assert_error

# Words no stemmer changes and no language drops: what matches is plain to the model.
WORDS = ["kab", "zot", "mup", "fen", "dax", "lor", "vim", "quib"]


def cid() -> str:
    return str(uuid.uuid4())


def send_all(sends: list[tuple[Any, int, str]]) -> list[dict[str, Any]]:
    """Commit (sender, room, body) sends in one batch, as the send path does."""
    outcomes = do_send_batch([Send(u, room, cid(), body) for u, room, body in sends])
    return [dict(result[0]) for result, _error, _events in outcomes if result]


def everything(user: Any, q: str, **kwargs: Any) -> list[dict[str, Any]]:
    """Every hit of a search, paged through by `next` with a small page."""
    hits: list[dict[str, Any]] = []
    before = None
    for _ in range(100):
        page = search.search(user, q, before=before, limit=3, **kwargs)
        hits += page["results"]
        before = page["next"]
        if before is None:
            return hits
    raise AssertionError("search never ended")


def seqs(hits: list[dict[str, Any]]) -> list[tuple[int, int]]:
    return [(hit["room"], hit["seq"]) for hit in hits]


# -- the index, against a model ----------------------------------------------------------------

pytestmark = pytest.mark.django_db(transaction=True)


def _holds(body: str, words: list[str]) -> bool:
    tokens = set(re.findall(r"\w+", body.lower()))
    return all(word in tokens for word in words)


bodies = st.lists(
    st.sampled_from([*WORDS, "Kab", "ZOT,", "mup.", "the", "x1"]), min_size=1, max_size=6
)


@settings(max_examples=100)
@given(
    messages=st.lists(st.tuples(st.integers(0, 2), st.booleans(), bodies), min_size=1, max_size=14),
    edits=st.lists(st.tuples(st.integers(0, 13), bodies), max_size=3),
    deletes=st.lists(
        st.tuples(st.integers(0, 13), st.sampled_from(["everyone", "me"])), max_size=3
    ),
    query=st.lists(st.sampled_from(WORDS), min_size=1, max_size=2),
    indexed=st.booleans(),
)
def test_search_finds_exactly_the_current_visible_messages_with_the_words(
    messages: list[tuple[int, bool, list[str]]],
    edits: list[tuple[int, list[str]]],
    deletes: list[tuple[int, str]],
    query: list[str],
    indexed: bool,
) -> None:
    me, other = make_user(f"s{uuid.uuid4().hex[:10]}"), make_user(f"o{uuid.uuid4().hex[:10]}")
    # Rooms 0 and 1 are mine (a direct room and a group); room 2 is others' alone.
    mine = [
        int(do_create_room(me, "direct", [other.pk])[0]["id"]),
        int(do_create_room(other, "group", [me.pk], "g")[0]["id"]),
    ]
    third = make_user(f"t{uuid.uuid4().hex[:10]}")
    rooms = [*mine, int(do_create_room(other, "group", [third.pk], "x")[0]["id"])]
    sent = send_all(
        [(me if by_me and r < 2 else other, rooms[r], " ".join(b)) for r, by_me, b in messages]
    )
    if indexed:  # SQLite: the edits and deletes below meet indexed text, not queued ids
        searchindex.flush(connection)
    current = {(m["room"], m["seq"]): m["body"] for m in sent}
    senders = {(m["room"], m["seq"]): m["sender"]["id"] for m in sent}
    for i, body in edits:
        if i < len(sent):
            key = (sent[i]["room"], sent[i]["seq"])
            author = me if senders[key] == me.pk else other
            if current[key] is not None:
                do_edit_message(author, key[0], key[1], " ".join(body), cid())
                current[key] = " ".join(body)
    hidden: set[tuple[int, int]] = set()
    for i, scope in deletes:
        if i < len(sent):
            key = (sent[i]["room"], sent[i]["seq"])
            if scope == "everyone":
                author = me if senders[key] == me.pk else other
                do_delete_message(author, key[0], key[1], "everyone")
                current[key] = None
            elif key[0] in mine and current[key] is not None:
                do_delete_message(me, key[0], key[1], "me")
                hidden.add(key)
    ids = {(m["room"], m["seq"]): m["id"] for m in sent}
    expected = [
        key
        for key, body in sorted(current.items(), key=lambda item: -ids[item[0]])
        if body is not None and key[0] in mine and key not in hidden and _holds(body, query)
    ]
    hits = everything(me, " ".join(query))
    assert seqs(hits) == expected
    for hit in hits:
        assert hit["message"]["body"] == current[(hit["room"], hit["seq"])]
        assert hit["snippet"] and hit["highlights"]
        marked = [hit["snippet"][a:b].lower() for a, b in hit["highlights"]]
        assert all(any(w in m for w in query) for m in marked), (hit["snippet"], marked)
    # The same, one room at a time.
    for room in mine:
        assert seqs(everything(me, " ".join(query), filters=search.Filters(room=room))) == [
            key for key in expected if key[0] == room
        ]
    if connection.vendor == "sqlite":
        searchindex.flush(connection)
        assert _index_entries(searchindex.FTS_TABLE) == _rebuilt_entries()


def _index_entries(table: str) -> list[tuple[Any, ...]]:
    """Every (word, message, position) an FTS5 index holds, read from the index itself."""
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE VIRTUAL TABLE {table}_words USING fts5vocab({table}, 'instance')")
        cursor.execute(f"SELECT term, doc, offset FROM {table}_words ORDER BY 1, 2, 3")
        rows = [tuple(row) for row in cursor.fetchall()]
        cursor.execute(f"DROP TABLE {table}_words")
    return rows


def _rebuilt_entries() -> list[tuple[Any, ...]]:
    """What the index would hold, built afresh from every message's current text."""
    tokenizer = searchindex.sqlite_tokenizer(str(setting("SEARCH_LANGUAGE")))
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE VIRTUAL TABLE fresh_fts USING fts5(body, content='linkup_message', "
            f"content_rowid='id', tokenize='{tokenizer}')"
        )
        cursor.execute("INSERT INTO fresh_fts(fresh_fts) VALUES ('rebuild')")
    try:
        return _index_entries("fresh_fts")
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE fresh_fts")


# -- what the syntax means on the database ------------------------------------------------------


@pytest.fixture
def chat(alice: Any, bob: Any) -> tuple[int, list[dict[str, Any]]]:
    room, _ = do_create_room(alice, "group", [bob.pk], "g")
    sent = send_all(
        [
            (alice, int(room["id"]), "kab zot together"),
            (bob, int(room["id"]), "zot then kab, apart"),
            (alice, int(room["id"]), "only fen here"),
            (bob, int(room["id"]), "kab and fen"),
            (alice, int(room["id"]), "We were running all day"),
        ]
    )
    return int(room["id"]), sent


def test_phrases_exclusions_and_or(alice: Any, chat: tuple[int, list[dict[str, Any]]]) -> None:

    def found(q: str) -> set[str]:
        return {hit["message"]["body"] for hit in everything(alice, q)}

    assert found("kab zot") == {"kab zot together", "zot then kab, apart"}
    assert found('"kab zot"') == {"kab zot together"}
    assert found("kab -zot") == {"kab and fen"}
    assert found("fen or together") == {"only fen here", "kab and fen", "kab zot together"}
    assert found("KAB") == found("kab")


def test_words_are_found_by_their_stem_on_english(
    alice: Any, chat: tuple[int, list[dict[str, Any]]]
) -> None:
    (hit,) = everything(alice, "run")
    assert hit["message"]["body"] == "We were running all day"
    assert [hit["snippet"][a:b] for a, b in hit["highlights"]] == ["running"]


def test_filters_by_sender_and_time(
    alice: Any, bob: Any, chat: tuple[int, list[dict[str, Any]]]
) -> None:
    _room, _ = chat
    assert {
        h["message"]["body"]
        for h in everything(alice, "kab", filters=search.Filters(sender=bob.pk))
    } == {
        "zot then kab, apart",
        "kab and fen",
    }
    now = timezone.now()
    assert (
        everything(alice, "kab", filters=search.Filters(since=now + dt.timedelta(minutes=1))) == []
    )
    assert (
        everything(alice, "kab", filters=search.Filters(until=now - dt.timedelta(minutes=1))) == []
    )
    assert (
        len(everything(alice, "kab", filters=search.Filters(since=now - dt.timedelta(minutes=5))))
        == 3
    )


def test_order_by_relevance_pages_through_every_hit_once(
    alice: Any, chat: tuple[int, list[dict[str, Any]]]
) -> None:
    newest = seqs(everything(alice, "kab or fen"))
    ranked = seqs(everything(alice, "kab or fen", order="relevance"))
    assert sorted(ranked) == sorted(newest) and len(set(ranked)) == len(ranked) == 4


def test_outsiders_find_nothing_and_a_room_not_theirs_is_not_found(
    carol: Any, chat: tuple[int, list[dict[str, Any]]]
) -> None:
    room, _ = chat
    assert everything(carol, "kab") == []
    with pytest.raises(NotFound):
        search.search(carol, "kab", filters=search.Filters(room=room))
    with pytest.raises(NotFound):
        search.search(carol, "kab", filters=search.Filters(room=room + 1000))


@pytest.mark.parametrize(
    ("q", "detail"),
    [("", "required"), ("   ", "required"), ("x" * 501, "longer than 500"), ("a\x00b", "control")],
)
def test_a_bad_query_is_refused_clearly(alice: Any, q: str, detail: str) -> None:
    with pytest.raises(InvalidInput, match=detail):
        search.search(alice, q)


def test_a_bad_cursor_is_refused(alice: Any, chat: tuple[int, list[dict[str, Any]]]) -> None:
    page = search.search(alice, "kab", limit=1)
    assert page["next"]
    # Not base64; "n4x"; "n-1"; "r10" (a rank cursor, for the newest-first order).
    for cursor in ["nonsense!", "!!", "bjR4", "bi0x", "cjEw"]:
        with pytest.raises(InvalidInput, match="cursor"):
            search.search(alice, "kab", before=cursor)


# -- over HTTP ---------------------------------------------------------------------------------


def test_the_rest_endpoint_answers_as_the_contract_says(
    alice: Any, bob: Any, carol: Any, chat: tuple[int, list[dict[str, Any]]]
) -> None:
    room, _ = chat
    api = Api(alice)
    first = api.get("/search", q="kab", limit=2)
    assert first.status_code == 200, first.content
    body = first.json()
    assert set(body) == {"results", "next"} and len(body["results"]) == 2
    hit = body["results"][0]
    assert set(hit) >= {"room", "seq", "message", "snippet"}
    assert hit["room"] == room and hit["message"]["seq"] == hit["seq"]
    rest = api.get("/search", q="kab", limit=2, before=body["next"]).json()
    assert rest["next"] is None
    assert [h["seq"] for h in body["results"] + rest["results"]] == sorted(
        [h["seq"] for h in body["results"] + rest["results"]], reverse=True
    )
    assert len(api.get("/search", q="kab", **{"from": bob.pk}).json()["results"]) == 2
    today = timezone.now().date().isoformat()
    assert len(api.get("/search", q="kab", since=today, until=today).json()["results"]) == 3
    assert api.get("/search", q="kab", until="2000-01-01").json()["results"] == []
    assert len(api.get("/search", q="kab", room=room, order="relevance").json()["results"]) == 3
    assert_error(api.get("/search", q="x" * 10_000), 400, "invalid_request")
    assert_error(api.get("/search"), 400, "invalid_request")
    assert_error(api.get("/search", q="kab", since="yesterday"), 400, "invalid_request")
    assert_error(api.get("/search", q="kab", before="garbage"), 400, "invalid_request")
    assert_error(api.get("/search", q="kab", order="random"), 400, "invalid_request")
    assert_error(Api(carol).get("/search", q="kab", room=room), 404, "not_found")
    assert_error(Api(carol).get("/search", q="kab", room=room + 99), 404, "not_found")
    assert Api(carol).get("/search", q="kab").json() == {"results": [], "next": None}
    assert_error(Api().get("/search", q="kab"), 401, "unauthorized")


@settings(max_examples=100)
@given(q=st.text(min_size=1, max_size=80))
def test_any_query_text_gets_an_answer_or_a_clear_refusal(
    alice: Any, chat: tuple[int, list[dict[str, Any]]], q: str
) -> None:
    response = Api(alice).get("/search", q=q)
    if response.status_code == 200:
        assert set(response.json()) == {"results", "next"}
    else:
        assert_error(response, 400, "invalid_request")


def test_searches_are_rate_limited(alice: Any, settings: Any) -> None:
    settings.LINKUP = {
        **settings.LINKUP,
        "MESSAGE_SEARCH_BURST": 2,
        "MESSAGE_SEARCH_RATE_PER_S": 0.001,
    }
    api = Api(alice)
    assert api.get("/search", q="kab").status_code == 200
    assert api.get("/search", q="kab").status_code == 200
    refused = assert_error(api.get("/search", q="kab"), 429, "rate_limited")
    assert "search" in refused["error"]["detail"]


def test_the_index_is_built_again_in_another_language(
    alice: Any, chat: tuple[int, list[dict[str, Any]]], settings: Any
) -> None:
    """`manage.py linkup_search_index` after SEARCH_LANGUAGE changed: "simple" stems
    nothing, so "run" no longer finds "running"; English again finds it."""
    from django.core.management import call_command

    assert len(everything(alice, "run")) == 1
    settings.LINKUP = {**settings.LINKUP, "SEARCH_LANGUAGE": "simple"}
    call_command("linkup_search_index", stdout=io.StringIO())
    assert everything(alice, "run") == []
    assert len(everything(alice, "running")) == 1
    settings.LINKUP = {**settings.LINKUP, "SEARCH_LANGUAGE": "english"}
    call_command("linkup_search_index", stdout=io.StringIO())
    assert len(everything(alice, "run")) == 1


def test_stop_words_alone_find_nothing_on_postgresql(
    alice: Any, chat: tuple[int, list[dict[str, Any]]]
) -> None:
    """PostgreSQL's english configuration drops "and" (a stop word): a query of it alone is
    empty, and must not become "every message of the caller's rooms". (SQLite's FTS5 keeps
    every word, so there it finds the message that says "and".)"""
    from django.db import connection

    found = everything(alice, "and")
    if connection.vendor == "postgresql":
        assert found == []
    else:
        assert [h["message"]["body"] for h in found] == ["kab and fen"]


def test_an_empty_answer_waits_out_the_floor(
    alice: Any, carol: Any, chat: tuple[int, list[dict[str, Any]]], settings: Any
) -> None:
    """Nothing found is answered no sooner than MESSAGE_SEARCH_EMPTY_FLOOR_S after the
    request: an outsider cannot time whether their words are said in rooms they are not in.
    (A lower bound only: the wait is a sleep.)"""
    import time

    settings.LINKUP = {**settings.LINKUP, "MESSAGE_SEARCH_EMPTY_FLOOR_S": 0.3}
    for q in ("kab", "nowhere"):  # said in a room carol is not in; said nowhere
        started = time.monotonic()
        answer = Api(carol).get("/search", q=q)
        assert answer.json()["results"] == []
        assert time.monotonic() - started >= 0.3


def test_the_send_path_indexes_new_messages_once_enough_wait(
    alice: Any, bob: Any, settings: Any, monkeypatch: Any
) -> None:
    """SQLite indexes new messages in batches: the send path indexes what waits every
    FLUSH_EVERY messages, so little waits however rarely anyone searches."""
    if connection.vendor != "sqlite":
        pytest.skip("PostgreSQL indexes every message as it is written")
    monkeypatch.setattr(searchindex, "FLUSH_EVERY", 5)
    room = int(do_create_room(alice, "group", [bob.pk], "g")[0]["id"])
    searchindex.flush(connection)

    def waiting() -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT (SELECT max(id) FROM linkup_message) - indexed_to FROM {searchindex.MARK}"
            )
            return int(cursor.fetchone()[0])

    send_all([(alice, room, f"kab {i}") for i in range(3)])
    assert waiting() == 3
    send_all([(alice, room, f"kab {i}") for i in range(3, 5)])
    assert waiting() == 0  # the fifth message indexed what waited
    send_all([(bob, room, "zot")])
    assert waiting() == 1
    assert len(everything(alice, "kab")) == 5 and waiting() == 0  # a search indexes first
    # The socket's send queue indexes after the batch's doorbells, not inside the batch.
    outcomes = do_send_batch(
        [Send(alice, room, cid(), f"dax {i}") for i in range(6)], index_later=True
    )
    assert all(error is None for _, error, _ in outcomes)
    assert waiting() == 6 and searchindex.due()
    assert index_due() == 6 and waiting() == 0 and not searchindex.due()
    assert index_due() == 0  # nothing waits: no transaction at all


def test_a_flush_reads_only_what_waits() -> None:
    """The flush's reads go by key (the queue's ids, the mark's range), never a scan of every
    message: its cost must not grow with the table."""
    if connection.vendor != "sqlite":
        pytest.skip("PostgreSQL indexes every message as it is written")
    table = "linkup_message"
    requeued = searchindex.REQUEUED.format(
        fts=searchindex.FTS_TABLE, table=table, queue=searchindex.QUEUE
    )
    select = requeued[requeued.index("SELECT") :]
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN QUERY PLAN {select}")
        plan = [row[-1] for row in cursor.fetchall()]
    assert f"SCAN {table}" not in " ".join(plan) and "SCAN m" not in plan, plan
    assert any(step.startswith("SEARCH m USING INTEGER PRIMARY KEY") for step in plan), plan


async def test_the_send_queue_indexes_once_the_batch_is_rung(
    alice: Any, bob: Any, monkeypatch: Any
) -> None:
    """Through a socket's send queue: the batch is acknowledged and its doorbells rung
    before the index is written, and the index is written all the same."""
    from asgiref.sync import sync_to_async

    from linkup.realtime import sending

    if connection.vendor != "sqlite":
        pytest.skip("PostgreSQL indexes every message as it is written")
    monkeypatch.setattr(searchindex, "FLUSH_EVERY", 3)
    room = int((await sync_to_async(do_create_room)(alice, "group", [bob.pk], "g"))[0]["id"])
    order: list[str] = []

    async def ring(events: list[Any]) -> None:
        order.append("rung")

    def indexed() -> int:
        done = index_due()
        order.append(f"indexed {done}")
        return done

    monkeypatch.setattr(sending, "publish", ring)
    monkeypatch.setattr(sending, "index_due", indexed)
    queue = sending.SendQueue()
    results = await asyncio.gather(
        *(queue.submit(Send(alice, room, cid(), f"lor {i}")) for i in range(3))
    )
    assert [message["seq"] for message, _ in results] == [1, 2, 3]
    assert queue.task is not None
    await queue.task  # the drain goes on after the acknowledgements
    assert order == ["rung", "indexed 3"]
    hits = await sync_to_async(everything)(alice, "lor")
    assert len(hits) == 3
