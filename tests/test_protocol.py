"""Client frame parsing (linkup/core/protocol.py): total on any input, exact on valid frames."""

from __future__ import annotations

import json
import unicodedata
import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkup.core.errors import InvalidInput, LinkupError, TooLarge, UnknownType
from linkup.core.protocol import (
    MAX_ID,
    FocusFrame,
    PingFrame,
    ReceiptFrame,
    SendFrame,
    SyncFrame,
    TypingFrame,
    check_client_id,
    check_cursors,
    check_id,
    check_message_body,
    check_seq,
    invisible,
    parse_frame,
)

# What it tests does not depend on the database or the channel layer.
pytestmark = pytest.mark.embedded_only

FRAME_TYPES = ("message.send", "receipt", "typing", "focus", "sync", "ping")
FRAME_CLASSES = (SendFrame, ReceiptFrame, TypingFrame, FocusFrame, SyncFrame, PingFrame)
#: The only exception classes parse_frame may raise.
PARSE_ERRORS = (InvalidInput, UnknownType, TooLarge)
FIELDS = ("type", "room", "client_id", "body", "kind", "seq", "state", "cursors")


# --- independent reference predicates (written from PROTOCOL.md, not from the code) -------


def is_control(char: str) -> bool:
    """Unicode general category Cc is exactly U+0000..U+001F and U+007F..U+009F."""
    code = ord(char)
    return code <= 0x1F or 0x7F <= code <= 0x9F


def is_surrogate(char: str) -> bool:
    return 0xD800 <= ord(char) <= 0xDFFF


def reference_body_ok(value: str, max_chars: int) -> bool:
    trimmed = value.strip()
    if not 1 <= len(trimmed) <= max_chars:
        return False
    return not any(
        is_surrogate(char) or (is_control(char) and char not in "\n\t") for char in trimmed
    )


def utf8_length(text: str) -> int:
    """Bytes of `text` in UTF-8, counting a lone surrogate as its 3-byte (WTF-8) form."""
    total = 0
    for char in text:
        code = ord(char)
        total += 1 if code < 0x80 else 2 if code < 0x800 else 3 if code < 0x10000 else 4
    return total


def parse_outcome(data: Any, **limits: int) -> Any:
    """Return the parsed frame or the LinkupError raised; anything else propagates."""
    try:
        frame = parse_frame(data, **limits)
    except LinkupError as exc:
        assert type(exc) in PARSE_ERRORS, f"unexpected {type(exc).__name__}: {exc}"
        return exc
    assert isinstance(frame, FRAME_CLASSES)
    return frame


def dump(value: Any, ascii_only: bool = True) -> str:
    return json.dumps(value, ensure_ascii=ascii_only)


# --- strategies -----------------------------------------------------------------------------

# Any code point, lone surrogates included, biased towards the interesting ones.
any_char = st.one_of(
    st.characters(exclude_categories=()),
    st.sampled_from(
        [
            "\x00",
            "\n",
            "\t",
            "\r",
            "\x0b",
            "\x1f",
            "\x7f",
            "\x85",
            "\x9f",
            "\xa0",
            " ",
            "\u2028",
            "\u3000",
            "\ud800",
            "\udfff",
            "\U0001f600",
            "\u0301",
            "\ufeff",
        ]
    ),
)
any_text = st.text(any_char, max_size=60)
# What a JSON text can carry in a string: every code point but the surrogates.
json_char = any_char.filter(lambda c: not is_surrogate(c))

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=20,
)

ids = st.integers(min_value=1, max_value=MAX_ID)
seqs = st.integers(min_value=0, max_value=MAX_ID)
# isprintable() and not isspace(): no code point from the C* or Z* categories.
client_id_chars = st.characters(exclude_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp"))
client_ids = st.uuids().map(str) | st.text(client_id_chars, min_size=1, max_size=64)
body_chars = st.one_of(
    st.characters(exclude_categories=("Cc", "Cs")),
    st.sampled_from(["\n", "\t", " ", "\u3000", "\U0001f600", "\u200b"]),
)
padding = st.text(st.sampled_from([" ", "\n", "\t", "\r", "\u3000", "\x1f"]), max_size=4)
bodies = st.builds(
    lambda left, core, right: left + core + right,
    padding,
    st.text(body_chars, min_size=1, max_size=200).filter(lambda s: not all(map(invisible, s))),
    padding,
)


@st.composite
def valid_frames(draw: st.DrawFn) -> tuple[dict[str, Any], Any]:
    """A valid client frame as a JSON object, and the dataclass it must parse to."""
    kind = draw(st.sampled_from(FRAME_TYPES))
    if kind == "message.send":
        room, client_id, body = draw(ids), draw(client_ids), draw(bodies)
        raw = {"type": kind, "room": room, "client_id": client_id, "body": body}
        return raw, SendFrame(room=room, client_id=client_id, body=body.strip())
    if kind == "receipt":
        room, marker, seq = draw(ids), draw(st.sampled_from(["delivered", "read"])), draw(seqs)
        raw = {"type": kind, "room": room, "kind": marker, "seq": seq}
        return raw, ReceiptFrame(room=room, kind=marker, seq=seq)
    if kind == "typing":
        room, state = draw(ids), draw(st.sampled_from(["start", "stop"]))
        return {"type": kind, "room": room, "state": state}, TypingFrame(room=room, state=state)
    if kind == "focus":
        room = draw(st.none() | ids)
        return {"type": kind, "room": room}, FocusFrame(room=room)
    if kind == "sync":
        cursors = draw(st.dictionaries(ids, seqs, max_size=8))
        raw = {"type": kind, "cursors": {str(k): v for k, v in cursors.items()}}
        return raw, SyncFrame(cursors=cursors)
    return {"type": kind}, PingFrame()


@st.composite
def fuzzed_frames(draw: st.DrawFn) -> dict[str, Any]:
    """A valid frame with some fields replaced, removed or added with arbitrary JSON values."""
    raw, _ = draw(valid_frames())
    for field in draw(st.lists(st.sampled_from(FIELDS[1:]), max_size=4)):
        action = draw(st.sampled_from(["replace", "remove"]))
        if action == "remove":
            raw.pop(field, None)
        else:
            raw[field] = draw(json_values)
    raw.update(draw(st.dictionaries(st.text(max_size=8), json_values, max_size=3)))
    raw["type"] = draw(st.sampled_from(FRAME_TYPES))
    return raw


# --- parse_frame is total -------------------------------------------------------------------


@given(data=any_text, max_bytes=st.none() | st.integers(min_value=0, max_value=100))
def test_parse_frame_total_on_any_text(data: str, max_bytes: int | None) -> None:
    limits = {} if max_bytes is None else {"max_bytes": max_bytes}
    parse_outcome(data, **limits)


@given(data=st.binary(max_size=200))
def test_parse_frame_refuses_any_bytes_as_invalid(data: bytes) -> None:
    outcome = parse_outcome(data)
    assert type(outcome) is InvalidInput
    assert outcome.as_frame()["code"] == "invalid_frame"


@given(value=json_values, ascii_only=st.booleans())
def test_parse_frame_total_on_any_json(value: Any, ascii_only: bool) -> None:
    parse_outcome(dump(value, ascii_only))


arbitrary_typed_dicts = st.builds(
    lambda fields, kind: {**fields, "type": kind},
    st.dictionaries(st.sampled_from(FIELDS[1:]) | st.text(max_size=8), json_values, max_size=6),
    st.sampled_from(FRAME_TYPES),
)


@given(raw=fuzzed_frames() | arbitrary_typed_dicts, ascii_only=st.booleans())
def test_parse_frame_total_on_fuzzed_frames(raw: dict[str, Any], ascii_only: bool) -> None:
    outcome = parse_outcome(dump(raw, ascii_only))
    if isinstance(outcome, LinkupError):
        assert type(outcome) is InvalidInput  # a known type is never UnknownType
        assert outcome.as_frame()["code"] == "invalid_frame"


@given(
    depth=st.integers(min_value=1, max_value=3000),
    shape=st.sampled_from(
        [("", "[", "]", ""), ("", '{"a":', "}", ""), ('{"type":"sync","cursors":', "[", "]", "}")]
    ),
    closed=st.booleans(),
)
def test_parse_frame_total_on_deep_nesting(
    depth: int, shape: tuple[str, str, str, str], closed: bool
) -> None:
    prefix, opener, closer, suffix = shape
    tail = closer * depth + suffix if closed else ""
    outcome = parse_outcome(prefix + opener * depth + "1" + tail)
    assert type(outcome) is InvalidInput  # not JSON, too deep, not an object, or no type


def test_client_id_with_lone_surrogate_escape_is_not_json() -> None:
    # JSON may spell a lone surrogate as an escape; there is no such string, so no ref.
    with pytest.raises(InvalidInput) as info:
        parse_frame('{"type": "typing", "room": true, "client_id": "\\ud800"}')
    assert type(info.value) is InvalidInput
    assert info.value.ref is None


def test_parse_frame_refuses_none() -> None:
    outcome = parse_outcome(None)
    assert type(outcome) is InvalidInput


# --- valid frames round-trip ----------------------------------------------------------------


@given(frame=valid_frames(), ascii_only=st.booleans())
def test_valid_frames_round_trip(frame: tuple[dict[str, Any], Any], ascii_only: bool) -> None:
    raw, expected = frame
    parsed = parse_frame(dump(raw, ascii_only))
    assert type(parsed) is type(expected)
    assert parsed == expected


@given(frame=valid_frames(), extra=st.dictionaries(st.text(max_size=8), json_values, max_size=3))
def test_unknown_fields_are_ignored(
    frame: tuple[dict[str, Any], Any], extra: dict[str, Any]
) -> None:
    raw, expected = frame
    assert parse_frame(dump({**extra, **raw})) == expected


def test_sync_without_cursors_is_empty() -> None:
    assert parse_frame('{"type": "sync"}') == SyncFrame(cursors={})


def test_focus_null_and_missing_room() -> None:
    assert parse_frame('{"type": "focus", "room": null}') == FocusFrame(room=None)
    with pytest.raises(InvalidInput):
        parse_frame('{"type": "focus"}')


# --- message bodies -------------------------------------------------------------------------


@given(value=st.text(any_char, max_size=60), max_chars=st.integers(min_value=1, max_value=40))
def test_check_message_body_matches_reference(value: str, max_chars: int) -> None:
    ok = reference_body_ok(value, max_chars)
    try:
        body = check_message_body(value, max_chars)
    except InvalidInput:
        assert not ok, f"refused a valid body {value!r}"
        return
    assert ok, f"accepted an invalid body {value!r}"
    assert body == value.strip()


@given(body=bodies)
def test_generated_bodies_are_accepted_trimmed(body: str) -> None:
    assert check_message_body(body, 4000) == body.strip()


@given(
    core=st.text(body_chars, min_size=1, max_size=30).filter(lambda s: not all(map(invisible, s))),
    bad=st.sampled_from(["\x00", "\x01", "\r", "\x0b", "\x1b", "\x7f", "\x85", "\x9f", "\ud800"]),
    at=st.integers(min_value=0, max_value=30),
)
def test_body_with_control_inside_is_refused(core: str, bad: str, at: int) -> None:
    at = min(at, len(core))
    body = "x" + core[:at] + bad + core[at:] + "x"  # inside, so trimming cannot remove it
    with pytest.raises(InvalidInput):
        check_message_body(body, 4000)


@pytest.mark.parametrize("value", [None, 1, True, ["hi"], {"body": "hi"}, b"hi"])
def test_body_must_be_a_string(value: Any) -> None:
    with pytest.raises(InvalidInput):
        check_message_body(value, 4000)


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("a" * 4000, True),
        ("  " + "a" * 4000 + "\n", True),
        ("a" * 4001, False),
        ("\U0001f600" * 4000, True),  # code points, not UTF-16 units or bytes
        ("\U0001f600" * 4001, False),
        ("e\u0301" * 2000, True),  # combining marks count as code points
        ("e\u0301" * 2000 + "e", False),
        ("", False),
        (" \n\t\u3000", False),
        ("line one\nline two\ttab", True),
        ("nul\x00", False),
        ("\x00", False),
        ("cr\r\nlf", False),
        ("lone \udc00 surrogate", False),
    ],
)
def test_body_limits(value: str, accepted: bool) -> None:
    if accepted:
        assert check_message_body(value, 4000) == value.strip()
    else:
        with pytest.raises(InvalidInput):
            check_message_body(value, 4000)


def test_send_frame_with_nul_body_is_invalid_frame_with_ref() -> None:
    ref = str(uuid.uuid4())
    data = json.dumps({"type": "message.send", "room": 1, "client_id": ref, "body": "a\u0000b"})
    with pytest.raises(InvalidInput) as info:
        parse_frame(data)
    assert info.value.as_frame()["code"] == "invalid_frame"
    assert info.value.ref == ref


# --- client ids, ids, seqs, cursors ---------------------------------------------------------


@given(value=st.text(any_char, max_size=80), max_chars=st.integers(min_value=1, max_value=70))
def test_check_client_id_matches_reference(value: str, max_chars: int) -> None:
    ok = 1 <= len(value) <= max_chars and all(
        unicodedata.category(char)[0] not in "CZ" for char in value
    )
    try:
        assert check_client_id(value, max_chars) == value
    except InvalidInput:
        assert not ok, f"refused a valid client_id {value!r}"
        return
    assert ok, f"accepted an invalid client_id {value!r}"


@given(value=st.uuids())
def test_uuid_client_ids_are_accepted(value: uuid.UUID) -> None:
    assert check_client_id(str(value), 64) == str(value)


@pytest.mark.parametrize("value", [None, 7, True, [], "", "a b", "tab\tid", "x" * 65, "\u200b"])
def test_bad_client_ids(value: Any) -> None:
    with pytest.raises(InvalidInput):
        check_client_id(value, 64)


@given(value=ids)
def test_check_id_accepts_positive_ints(value: int) -> None:
    assert check_id(value, "room") == value


@given(value=seqs)
def test_check_seq_accepts_non_negative_ints(value: int) -> None:
    assert check_seq(value) == value


@pytest.mark.parametrize(
    "value", [True, False, 0, -1, MAX_ID + 1, 2**64, 1.0, 1.5, "1", None, [1], {"id": 1}]
)
def test_check_id_refuses(value: Any) -> None:
    with pytest.raises(InvalidInput):
        check_id(value, "room")


@pytest.mark.parametrize("value", [True, False, -1, MAX_ID + 1, 0.0, 3.0, "3", None])
def test_check_seq_refuses(value: Any) -> None:
    with pytest.raises(InvalidInput):
        check_seq(value)


@given(cursors=st.dictionaries(ids, seqs, max_size=20))
def test_check_cursors_round_trip(cursors: dict[int, int]) -> None:
    assert check_cursors({str(k): v for k, v in cursors.items()}) == cursors


@pytest.mark.parametrize(
    "value",
    [
        None,
        [],
        "1:2",
        {"0": 1},
        {"-1": 1},
        {"+1": 1},
        {" 1": 1},
        {"1.0": 1},
        {"x": 1},
        {"\u0661": 1},  # ARABIC-INDIC DIGIT ONE: isdigit() but not a room id
        {"\u00b2": 1},  # SUPERSCRIPT TWO
        {str(MAX_ID + 1): 1},
        {"1" * 20: 1},
        {"1": -1},
        {"1": True},
        {"1": 1.0},
        {"1": "1"},
        {"1": None},
        {str(n): 0 for n in range(1, 10_002)},
    ],
)
def test_check_cursors_refuses(value: Any) -> None:
    with pytest.raises(InvalidInput):
        check_cursors(value)


# --- sizes, refs, bools, types --------------------------------------------------------------


@given(data=any_text, max_bytes=st.integers(min_value=0, max_value=120))
def test_too_large_exactly_when_over_max_bytes(data: str, max_bytes: int) -> None:
    outcome = parse_outcome(data, max_bytes=max_bytes)
    assert (type(outcome) is TooLarge) == (utf8_length(data) > max_bytes)


@given(frame=valid_frames(), ascii_only=st.booleans())
def test_valid_frame_over_max_bytes_is_too_large(
    frame: tuple[dict[str, Any], Any], ascii_only: bool
) -> None:
    data = dump(frame[0], ascii_only)
    size = len(data.encode("utf-8"))
    with pytest.raises(TooLarge) as info:
        parse_frame(data, max_bytes=size - 1)
    assert info.value.as_frame()["code"] == "too_large"
    assert parse_frame(data, max_bytes=size) == frame[1]


def test_frame_over_default_limit_is_too_large() -> None:
    padding = "x" * (64 * 1024)
    with pytest.raises(TooLarge):
        parse_frame(json.dumps({"type": "ping", "pad": padding}))
    # 64 KiB counts bytes, not code points: 22,000 three-byte characters is over it.
    with pytest.raises(TooLarge):
        parse_frame(json.dumps({"type": "ping", "pad": "\u20ac" * 22_000}, ensure_ascii=False))


@st.composite
def refused_frames(draw: st.DrawFn) -> dict[str, Any]:
    """A frame that parse_frame must refuse (after it has read the JSON object)."""
    kind = draw(st.sampled_from(["message.send", "receipt", "typing", "focus", "sync", "?"]))
    if kind == "sync":
        return {"type": "sync", "cursors": draw(st.sampled_from(["x", [1], {"0": 1}]))}
    if kind == "?":
        return {"type": draw(st.text(max_size=20).filter(lambda t: t not in FRAME_TYPES))}
    return {"type": kind, "room": draw(st.sampled_from([True, False, 0, -3, "1", 1.5]))}


@given(
    raw=refused_frames(),
    client_id=st.one_of(
        st.text(json_char, max_size=80),
        st.none(),
        st.integers(),
        st.booleans(),
        st.lists(st.text(max_size=3), max_size=2),
    ),
)
def test_error_ref_echoes_client_id(raw: dict[str, Any], client_id: Any) -> None:
    raw["client_id"] = client_id
    outcome = parse_outcome(json.dumps(raw))
    assert isinstance(outcome, InvalidInput)
    expected = client_id if isinstance(client_id, str) and 1 <= len(client_id) <= 64 else None
    assert outcome.ref == expected
    assert outcome.as_frame()["ref"] == expected


@given(raw=refused_frames())
def test_error_ref_is_none_without_client_id(raw: dict[str, Any]) -> None:
    outcome = parse_outcome(json.dumps(raw))
    assert isinstance(outcome, InvalidInput)
    assert outcome.ref is None


@pytest.mark.parametrize(
    "raw",
    [
        {"type": "message.send", "room": True, "client_id": "c", "body": "hi"},
        {"type": "message.send", "room": False, "client_id": "c", "body": "hi"},
        {"type": "receipt", "room": True, "kind": "read", "seq": 1},
        {"type": "receipt", "room": 1, "kind": "read", "seq": True},
        {"type": "receipt", "room": 1, "kind": "read", "seq": False},
        {"type": "typing", "room": True, "state": "start"},
        {"type": "focus", "room": True},
        {"type": "focus", "room": False},
        {"type": "sync", "cursors": {"1": True}},
        {"type": "sync", "cursors": {"1": False}},
    ],
)
def test_bools_are_not_ints(raw: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_frame(json.dumps(raw))
    assert type(info.value) is InvalidInput
    assert info.value.as_frame()["code"] == "invalid_frame"


@given(
    kind=st.text(json_char, max_size=60).filter(lambda t: t not in FRAME_TYPES),
    client_id=st.none() | client_ids,
)
def test_unknown_type_is_unknown_type(kind: str, client_id: str | None) -> None:
    raw: dict[str, Any] = {"type": kind}
    if client_id is not None:
        raw["client_id"] = client_id
    with pytest.raises(UnknownType) as info:
        parse_frame(json.dumps(raw))
    frame = info.value.as_frame()
    assert frame["type"] == "error" and frame["code"] == "unknown_type"
    assert frame["ref"] == client_id


@pytest.mark.parametrize(
    "raw", [{}, {"type": None}, {"type": 1}, {"type": ["ping"]}, {"type": {"ping": 1}}]
)
def test_missing_or_non_string_type_is_invalid(raw: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_frame(json.dumps(raw))
    assert type(info.value) is InvalidInput
    assert info.value.as_frame()["code"] == "invalid_frame"


@given(value=json_values.filter(lambda v: not isinstance(v, dict)))
def test_non_object_json_is_invalid_frame(value: Any) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_frame(json.dumps(value))
    assert type(info.value) is InvalidInput
    assert info.value.as_frame()["code"] == "invalid_frame"
    assert info.value.ref is None


@pytest.mark.parametrize("data", ["", "{", "ping", "{'type': 'ping'}", "NaN", "[1,]", "\ud800"])
def test_not_json_is_invalid_frame(data: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_frame(data)
    assert type(info.value) is InvalidInput


# --- exact error frames ---------------------------------------------------------------------


def error_frame(data: Any, **limits: int) -> dict[str, Any]:
    with pytest.raises(LinkupError) as info:
        parse_frame(data, **limits)
    return info.value.as_frame()


def test_error_frame_for_invalid_json() -> None:
    frame = error_frame("{not json")
    assert frame == {
        "type": "error",
        "code": "invalid_frame",
        "detail": frame["detail"],
        "ref": None,
    }
    assert isinstance(frame["detail"], str) and frame["detail"]


def test_error_frame_for_blank_body_echoes_ref() -> None:
    frame = error_frame(
        json.dumps({"type": "message.send", "room": 5, "client_id": "abc-1", "body": " \n "})
    )
    assert frame["type"] == "error"
    assert frame["code"] == "invalid_frame"
    assert frame["ref"] == "abc-1"
    assert "retry_after_s" not in frame


def test_error_frame_for_unknown_type() -> None:
    frame = error_frame(json.dumps({"type": "message.forward", "client_id": "c-9"}))
    assert frame["code"] == "unknown_type"
    assert frame["ref"] == "c-9"
    assert set(frame) == {"type", "code", "detail", "ref"}


def test_error_frame_for_too_large() -> None:
    frame = error_frame(json.dumps({"type": "ping"}), max_bytes=5)
    assert frame["code"] == "too_large"
    assert frame["type"] == "error"


def test_error_frame_for_binary() -> None:
    assert error_frame(b'{"type": "ping"}')["code"] == "invalid_frame"


def test_error_frame_for_bad_receipt_kind() -> None:
    frame = error_frame(json.dumps({"type": "receipt", "room": 1, "kind": "seen", "seq": 1}))
    assert frame["code"] == "invalid_frame"
    assert frame["ref"] is None


def test_error_frame_for_bad_typing_state() -> None:
    frame = error_frame(json.dumps({"type": "typing", "room": 1, "state": "typing"}))
    assert frame["code"] == "invalid_frame"


def test_ref_longer_than_64_is_not_echoed() -> None:
    frame = error_frame(json.dumps({"type": "nope", "client_id": "x" * 65}))
    assert frame["code"] == "unknown_type"
    assert frame["ref"] is None


def test_rest_codes_of_parse_errors() -> None:
    assert InvalidInput().as_body()["error"]["code"] == "invalid_request"
    assert UnknownType().as_body()["error"]["code"] == "invalid_request"
    assert TooLarge().as_body()["error"]["code"] == "too_large"


INVISIBLE = st.sampled_from(
    [" ", "\t", "\n", "\u00a0", "\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u3164",
     "\u115f", "\u1160", "\uffa0", "\u2800", "\u00ad", "\ufe0f", "\u202e", "\U000e0041"]
)  # fmt: skip


@given(st.text(INVISIBLE, min_size=1, max_size=30))
def test_a_body_of_only_invisible_characters_is_blank(body: str) -> None:
    with pytest.raises(InvalidInput, match="blank"):
        check_message_body(body, 4000)


@given(
    st.text(INVISIBLE, max_size=10),
    st.characters(
        blacklist_categories=("Cc", "Cs", "Cf", "Zs", "Zl", "Zp", "Cn", "Co", "Mn", "Me")
    ).filter(lambda c: not invisible(c)),
    st.text(INVISIBLE, max_size=10),
)
def test_one_visible_character_among_invisible_ones_is_a_body(
    before: str, visible: str, after: str
) -> None:
    body = check_message_body(before + visible + after, 4000)
    assert visible in body


def test_emoji_sequences_with_joiners_and_selectors_are_bodies() -> None:
    for emoji in (
        "\u2764\ufe0f",
        "\U0001f468\u200d\U0001f469\u200d\U0001f467",
        "\U0001f3f4\U000e0067\U000e0062\U000e007f",
    ):
        assert check_message_body(emoji, 4000) == emoji
