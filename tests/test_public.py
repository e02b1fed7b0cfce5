"""The app's public face: what a site names in its settings, URLs and ASGI file stays
importable where the README and docs say, whatever layer now holds it."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest
from django.urls import URLPattern, URLResolver
from django.utils.module_loading import import_string

import linkup
from linkup.realtime.auth import SocketAuthMiddleware
from linkup.realtime.layers import EmbeddedChannelLayer
from linkup.web.middleware import ApiErrorMiddleware

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# `linkup.x.Y` in backticks, include("linkup.x"), and `from linkup.x import Y` in the docs.
_NAMED = re.compile(r"`(linkup(?:\.\w+)+)`")
_INCLUDED = re.compile(r'include\("(linkup[\w.]*)"\)')
_IMPORTED = re.compile(r"from (linkup[\w.]*) import (\w+)")


def documented_names() -> set[str]:
    names: set[str] = set()
    for doc in DOCS:
        text = doc.read_text()
        names |= set(_NAMED.findall(text))
        names |= set(_INCLUDED.findall(text))
        names |= {f"{module}.{name}" for module, name in _IMPORTED.findall(text)}
    return names


def resolve(dotted: str) -> object:
    """A module, or an attribute of one (a file path such as linkup/conf.py is not named)."""
    try:
        return importlib.import_module(dotted)
    except ModuleNotFoundError:
        return import_string(dotted)


def test_the_docs_name_the_public_face() -> None:
    names = documented_names()
    for public in (
        "linkup.urls",
        "linkup.web_urls",
        "linkup.asgi.websocket_application",
        "linkup.layers.EmbeddedChannelLayer",
        "linkup.middleware.ApiErrorMiddleware",
    ):
        assert public in names, f"{public} is no longer documented"


@pytest.mark.parametrize("dotted", sorted(documented_names()))
def test_every_documented_name_imports(dotted: str) -> None:
    assert resolve(dotted) is not None


def test_public_names_are_the_new_homes_re_exported() -> None:
    assert import_string("linkup.layers.EmbeddedChannelLayer") is EmbeddedChannelLayer
    assert import_string("linkup.middleware.ApiErrorMiddleware") is ApiErrorMiddleware
    assert import_string("linkup.middleware.SocketAuthMiddleware") is SocketAuthMiddleware
    assert callable(import_string("linkup.asgi.websocket_application"))
    assert linkup.PROTOCOL_VERSION == 1
    for module in ("linkup.urls", "linkup.web_urls"):
        patterns = importlib.import_module(module).urlpatterns
        assert patterns and all(isinstance(p, URLPattern | URLResolver) for p in patterns)


def test_settings_the_server_names_resolve() -> None:
    """Dotted paths in the standalone server's settings (a site copies them)."""
    from django.conf import settings

    assert import_string(settings.CHANNEL_LAYERS["default"]["BACKEND"])
    for dotted in settings.MIDDLEWARE:
        assert import_string(dotted)
    formatter = settings.LOGGING["formatters"]["json"]["()"]
    assert import_string(formatter)
