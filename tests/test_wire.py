"""Frames encoded once (linkup/realtime/wire.py): the bytes the hub writes for everyone are
exactly the frame a WebSocket server sends, and parse back to the text."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.frames import Frame, Opcode

from linkup.realtime.wire import Outgoing, text_frame

# What it tests does not depend on the database or the channel layer.
pytestmark = pytest.mark.embedded_only

# Lengths around each boundary of the length encoding (7 bits, 16 bits, 64 bits).
LENGTHS = st.one_of(st.integers(0, 130), st.integers(65_530, 65_540), st.integers(0, 200_000))


@settings(max_examples=200)
@given(LENGTHS, st.characters(codec="utf-8"))
def test_a_text_frame_is_the_frame_websockets_serializes(length: int, char: str) -> None:
    payload = (char * length).encode()[:length] if length else b""
    expected = Frame(Opcode.TEXT, payload).serialize(mask=False)
    assert text_frame(payload) == expected


@settings(max_examples=100)
@given(st.dictionaries(st.text(max_size=20), st.one_of(st.integers(-(2**53), 2**53), st.text())))
def test_an_outgoing_frame_keeps_its_text(frame: dict[str, object]) -> None:
    out = Outgoing.of(frame)
    header = len(out.framed) - len(out.payload)
    assert out.framed[header:] == out.payload
    assert out.text == out.payload.decode()
    assert out.framed is out.framed  # framed once
