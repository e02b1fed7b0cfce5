"""WebSocket routes (linkup/realtime/routing.py) and the start-up checks over them
(linkup/checks.py)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.urls import path, re_path
from hypothesis import assume, given
from hypothesis import strategies as st

import linkup.realtime.routing
from linkup.checks import check_routing, validate_startup
from linkup.realtime.consumers import ChatConsumer
from linkup.realtime.routing import ROUTE_EXAMPLES, validate_routes, websocket_urlpatterns

CONSUMER = ChatConsumer.as_asgi()
BROKEN_REGEX = r"^ws/(?P<x"


def broken_route() -> Any:
    return re_path(BROKEN_REGEX, CONSUMER, name="broken-route")


# --- the shipped routes ---------------------------------------------------------------------


def test_shipped_routes_validate() -> None:
    assert websocket_urlpatterns, "no WebSocket routes shipped"
    assert validate_routes(websocket_urlpatterns, ROUTE_EXAMPLES) == []


def test_shipped_routes_serve_the_contract_path() -> None:
    # PROTOCOL.md: one socket per client at /ws/chat/.
    assert "/ws/chat/" in ROUTE_EXAMPLES.values()
    names = {pattern.name for pattern in websocket_urlpatterns}
    assert set(ROUTE_EXAMPLES) <= names


def test_shipped_routing_passes_the_system_check() -> None:
    assert check_routing() == []


def test_validate_startup_passes_with_shipped_configuration() -> None:
    validate_startup()  # raises ImproperlyConfigured on any problem


# --- each kind of problem -------------------------------------------------------------------


def test_broken_regex_is_reported_by_name() -> None:
    problems = validate_routes([broken_route()], {"broken-route": "/ws/x/"})
    assert len(problems) == 1
    assert "'broken-route'" in problems[0]
    assert "does not compile" in problems[0]


def test_broken_regex_without_name_is_reported_by_pattern() -> None:
    problems = validate_routes([re_path(BROKEN_REGEX, CONSUMER)], {})
    assert len(problems) == 1
    assert BROKEN_REGEX in problems[0]
    assert "does not compile" in problems[0]


def test_route_without_example_is_reported() -> None:
    problems = validate_routes([path("ws/other/", CONSUMER, name="other")], ROUTE_EXAMPLES)
    assert problems == ["WebSocket route 'other' has no documented example path"]


def test_unnamed_route_without_example_is_reported() -> None:
    problems = validate_routes([path("ws/other/", CONSUMER)], ROUTE_EXAMPLES)
    assert len(problems) == 1
    assert "'ws/other/'" in problems[0] and "no documented example" in problems[0]


def test_example_that_does_not_match_is_reported() -> None:
    problems = validate_routes([path("ws/other/", CONSUMER, name="other")], {"other": "/ws/chat/"})
    assert len(problems) == 1
    assert "'other'" in problems[0]
    assert "'/ws/chat/'" in problems[0]
    assert "does not match" in problems[0]


def test_one_problem_per_broken_route_and_none_for_good_ones() -> None:
    patterns = [
        *websocket_urlpatterns,
        broken_route(),
        path("ws/undocumented/", CONSUMER, name="undocumented"),
        path("ws/wrong/", CONSUMER, name="wrong"),
        re_path(r"^ws/room/(?P<room>[0-9]+)/$", CONSUMER, name="room"),
    ]
    examples = {
        **ROUTE_EXAMPLES,
        "broken-route": "/ws/x/",
        "wrong": "/ws/right/",
        "room": "/ws/room/12/",
    }
    problems = validate_routes(patterns, examples)
    assert len(problems) == 3
    assert "'broken-route'" in problems[0]
    assert "'undocumented'" in problems[1]
    assert "'wrong'" in problems[2]


def test_converter_routes_match_their_examples() -> None:
    patterns = [path("ws/room/<int:room>/", CONSUMER, name="room")]
    assert validate_routes(patterns, {"room": "/ws/room/12/"}) == []
    assert len(validate_routes(patterns, {"room": "/ws/room/twelve/"})) == 1


# --- generated literal routes ---------------------------------------------------------------

segments = st.from_regex(r"[a-z]+", fullmatch=True)
routes = st.lists(segments, min_size=1, max_size=4).map(lambda parts: "/".join(parts) + "/")


@st.composite
def other_paths(draw: st.DrawFn, route: str) -> str:
    """A path other than `route`: unrelated, or one edit away from it."""
    return draw(
        st.one_of(
            routes,
            st.just(route + draw(segments) + "/"),  # one segment longer
            st.just(route[:-1]),  # no trailing slash
            st.just(draw(segments) + "/" + route),  # one segment in front
            st.just(route.rsplit("/", 2)[0] + "/" if route.count("/") > 1 else "x" + route),
        )
    )


@given(route=routes, data=st.data())
def test_literal_route_matches_only_its_own_example(route: str, data: st.DataObject) -> None:
    patterns = [path(route, CONSUMER, name="generated")]
    assert validate_routes(patterns, {"generated": "/" + route}) == []

    other = data.draw(other_paths(route))
    assume(other != route)
    problems = validate_routes(patterns, {"generated": "/" + other})
    assert len(problems) == 1
    assert "'generated'" in problems[0] and "does not match" in problems[0]


# --- start-up checks ------------------------------------------------------------------------


def test_validate_startup_names_a_broken_route(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        linkup.realtime.routing, "websocket_urlpatterns", [*websocket_urlpatterns, broken_route()]
    )
    with pytest.raises(ImproperlyConfigured) as info:
        validate_startup()
    message = str(info.value)
    assert "broken-route" in message
    assert "linkup.E001" in message


def test_validate_startup_names_an_undocumented_route(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        linkup.realtime.routing,
        "websocket_urlpatterns",
        [*websocket_urlpatterns, path("ws/secret/", CONSUMER, name="secret")],
    )
    with pytest.raises(ImproperlyConfigured) as info:
        validate_startup()
    assert "'secret'" in str(info.value)


def test_validate_startup_names_a_wrong_example(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(linkup.realtime.routing, "ROUTE_EXAMPLES", {"linkup-chat": "/ws/chats/"})
    with pytest.raises(ImproperlyConfigured) as info:
        validate_startup()
    assert "'linkup-chat'" in str(info.value)
    assert "'/ws/chats/'" in str(info.value)


def test_check_routing_reports_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(linkup.realtime.routing, "websocket_urlpatterns", [broken_route()])
    errors = check_routing()
    assert [error.id for error in errors] == ["linkup.E001"]
    assert errors[0].is_serious()
    assert "broken-route" in errors[0].msg


def test_websocket_application_refuses_to_start_on_a_broken_route(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from linkup.asgi import websocket_application

    monkeypatch.setattr(linkup.realtime.routing, "websocket_urlpatterns", [broken_route()])
    with pytest.raises(ImproperlyConfigured, match="broken-route"):
        websocket_application()


def test_a_broken_route_is_logged_in_the_routing_category(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from linkup.asgi import websocket_application

    monkeypatch.setattr(linkup.realtime.routing, "websocket_urlpatterns", [broken_route()])
    with caplog.at_level(logging.CRITICAL, logger="linkup"), pytest.raises(ImproperlyConfigured):
        websocket_application()
    records = [r for r in caplog.records if r.name == "linkup"]
    assert [(r.levelname, r.category) for r in records] == [("CRITICAL", "routing")]  # type: ignore[attr-defined]
    assert "broken-route" in records[0].getMessage()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SEND_RATE_PER_S", 0),
        ("SEND_BURST", -1),
        ("TYPING_RATE_PER_S", "fast"),
        ("SEND_BURST", True),
    ],
)
def test_a_bucket_without_a_positive_rate_and_burst_is_refused(
    settings: Any, name: str, value: Any
) -> None:
    from linkup.checks import check_settings

    settings.LINKUP = {name: value}
    problems = [p for p in check_settings() if p.id == "linkup.E005"]
    assert len(problems) == 1 and name in problems[0].msg
    settings.LINKUP = {name: 0.5}
    assert not [p for p in check_settings() if p.id == "linkup.E005"]
