"""Languages: no word a person sees is left out of translation, and Spanish is complete.

Three checks, in `make test`:
- the pages' templates: every text and every attribute a person reads (placeholder, title,
  aria-label, alt, a button's value) sits inside `{% translate %}` or `{% blocktranslate %}`;
- the web client's JavaScript: every string literal that reads as words sits inside
  `gettext(...)` or `ngettext(...)` (the few that are not words for people, such as key
  names and CSS classes, are listed below with the reason);
- the catalogs: what `makemessages` extracts today is exactly what linkup/locale/es holds,
  every entry is translated (none empty, none fuzzy), and the compiled .mo files say what
  the .po files say. This one needs GNU gettext (Django's makemessages does); CI fails
  without it.

And the pages themselves: a browser asking for Spanish gets Spanish, a person's own choice
wins over the browser's, and the chat page carries its words for the client."""

from __future__ import annotations

import gettext as pygettext
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.template.base import Lexer, TokenType

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "linkup"
TEMPLATES = sorted((APP / "templates").rglob("*.html"))
SCRIPTS = sorted((APP / "static" / "linkup").glob("*.js"))
LOCALE = APP / "locale"
LANGUAGES = ["es"]

pytestmark = pytest.mark.embedded_only

# -- templates ----------------------------------------------------------------------------

READ_ATTRIBUTES = {"placeholder", "title", "aria-label", "alt", "label"}
WORDS = re.compile(r"[^\W\d_]{2,}")  # two letters in a row, any script


class _Reader(HTMLParser):
    """Collects what a person reads in an HTML fragment, outside <script> and <style>."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.read: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self.hidden += 1
        named = dict(attrs)
        for name, value in attrs:
            if value and name in READ_ATTRIBUTES:
                self.read.append(f"{tag}[{name}]={value}")
        pressed = named.get("type") in ("submit", "button", "reset")
        if tag in ("input", "button") and pressed and named.get("value"):
            self.read.append(f"{tag}[value]={named['value']}")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self.hidden:
            self.hidden -= 1

    def handle_data(self, data: str) -> None:
        if not self.hidden and data.strip():
            self.read.append(data.strip())


def untranslated_in_template(source: str) -> list[str]:
    """What a person would read in a template that no translation tag covers. Every tag and
    variable becomes a mark that reads as nothing (a translated string is one), blocks of
    `blocktranslate` and `comment` too; the page left is read as HTML."""
    pieces = []
    inside = 0  # within blocktranslate (its text is the message) or comment
    for token in Lexer(source).tokenize():
        words = token.contents.split()
        name = words[0] if words and token.token_type == TokenType.BLOCK else ""
        if name in ("blocktranslate", "comment") or (
            name == "block" and words[1].endswith("_class")
        ):
            inside += 1
        elif name in ("endblocktranslate", "endcomment") or (name == "endblock" and inside):
            inside -= 1
            pieces.append(MARK)
        elif token.token_type == TokenType.TEXT and not inside:
            pieces.append(token.contents)
        elif not inside:
            pieces.append(MARK)
    reader = _Reader()
    reader.feed("".join(pieces))
    reader.close()
    found = []
    for text in reader.read:
        what = text.split("=", 1)[-1].replace(MARK, " ")
        what = re.sub(r"&\w+;", " ", what).replace(PRODUCT, " ")
        if WORDS.search(what):
            found.append(repr(text.replace(MARK, "{…}")))
    return found


MARK = "\x00"
PRODUCT = "Linkup"  # the name is the same in every language


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_every_word_of_a_template_is_translatable(path: Path) -> None:
    assert untranslated_in_template(path.read_text()) == []


def test_the_template_check_finds_what_is_left_out() -> None:
    page = (
        '{% load i18n %}<p>{% translate "Fine" %}</p><p>Left out</p>'
        '<input placeholder="Find people…"><input placeholder="{% translate "Fine" %}">'
        "{% blocktranslate %}Fine {{ x }}{% endblocktranslate %}<script>var a = 'code';</script>"
        '<button type="submit" value="Send"></button><span>{{ name }} · 3</span>'
        '<a href="{% url "x" %}" class="link">{% translate "Fine" %}</a>'
        '<title>{% translate "Fine" %} · Linkup</title>'
    )
    assert untranslated_in_template(page) == [
        "'Left out'",
        "'input[placeholder]=Find people…'",
        "'button[value]=Send'",
    ]


# -- the web client ---------------------------------------------------------------------------

MARKERS = {"gettext", "ngettext"}
# String literals that read as words but are not for people, by why.
NOT_FOR_PEOPLE = {
    # names the browser's APIs use
    "Notification",  # "Notification" in window
    "Files",  # a drag's DataTransfer type
    "Accept",  # an HTTP header
    "Enter",
    "Escape",
    "Tab",
    "Home",
    "End",  # KeyboardEvent.key values
    # CSS classes and selectors, rel values
    "msg own",
    "chip mine",
    "mention me",
    "avatar small",
    "secondary small",
    ".retry, .discard",
    "noopener noreferrer nofollow",
    # the product's name (a title when no chat is open, the push notification's fallback)
    "Linkup",
    # for developers: the console, a programming error, the outbox's storage key
    "linkup: catch-up failed",
    "not a change: \x00",
    "signing out",
    "linkup:outbox:\x00:",
    "m:\x00:\x00",
}


def js_tokens(source: str) -> list[tuple[str, str, int]]:
    """(kind, text, line) of a script: "str" for string and template literals (each
    `${...}` as \\x00), "name", "punct"; comments and regular expressions left out."""
    out: list[tuple[str, str, int]] = []
    i, n, last = 0, len(source), ""

    def line() -> int:
        return source.count("\n", 0, i) + 1

    while i < n:
        c = source[i]
        if source.startswith("//", i):
            end = source.find("\n", i)
            i = n if end < 0 else end
        elif source.startswith("/*", i):
            end = source.find("*/", i + 2)
            i = n if end < 0 else end + 2
        elif c in "\"'":
            j, text = i + 1, []
            while j < n and source[j] != c:
                if source[j] == "\\":
                    text.append(source[j + 1])
                    j += 2
                    continue
                text.append(source[j])
                j += 1
            out.append(("str", "".join(text), line()))
            i, last = j + 1, "str"
        elif c == "`":
            j, text = i + 1, []
            while j < n and source[j] != "`":
                if source[j] == "\\":
                    text.append(source[j + 1])
                    j += 2
                elif source.startswith("${", j):
                    depth, j = 1, j + 2
                    while j < n and depth:
                        depth += {"{": 1, "}": -1}.get(source[j], 0)
                        if source[j] in "\"'`" and depth:
                            quote, j = source[j], j + 1
                            while j < n and source[j] != quote:
                                j += 2 if source[j] == "\\" else 1
                        j += 1
                    text.append("\x00")
                else:
                    text.append(source[j])
                    j += 1
            out.append(("str", "".join(text), line()))
            i, last = j + 1, "str"
        elif c == "/" and (last in ("", "punct") and out and out[-1][1] in "(,=:[!&|?{};"):
            j, in_class = i + 1, False  # a regular expression literal
            while j < n and (source[j] != "/" or in_class):
                if source[j] == "\\":
                    j += 1
                elif source[j] == "[":
                    in_class = True
                elif source[j] == "]":
                    in_class = False
                j += 1
            i, last = j + 1, "regex"
        elif c.isalpha() or c in "_$":
            j = i
            while j < n and (source[j].isalnum() or source[j] in "_$"):
                j += 1
            out.append(("name", source[i:j], line()))
            i, last = j, "name"
        elif c.isspace():
            i += 1
        else:
            out.append(("punct", c, line()))
            i, last = i + 1, "punct"
    return out


def reads_as_words(text: str) -> bool:
    """Two words of letters, or one capitalised word: what a person would read."""
    words = [
        w for w in text.replace("\x00", " ").split() if re.fullmatch(r"[A-Za-z’',.!?:;…()]+", w)
    ]
    if len([w for w in words if re.search(r"[A-Za-z]{2}", w)]) >= 2:
        return True
    return re.fullmatch(r"[A-Z][a-z]+[.:…!?]?", text.strip()) is not None


def unmarked_in_script(source: str) -> list[str]:
    """Literals that read as words outside any gettext(...) or ngettext(...) call."""
    found = []
    tokens = js_tokens(source)
    depth = 0  # parentheses open since a marker's "(", while inside one
    for index, (kind, text, line) in enumerate(tokens):
        if depth:
            if kind == "punct" and text == "(":
                depth += 1
            elif kind == "punct" and text == ")":
                depth -= 1
            continue
        if kind == "name" and text in MARKERS and index + 1 < len(tokens):
            after = tokens[index + 1]
            before = tokens[index - 1] if index else ("", "", 0)
            if after[1] == "(" and before[1] not in ("function", "."):
                depth = 1
                tokens[index + 1] = ("skip", "", after[2])
            continue
        if kind == "str" and text not in NOT_FOR_PEOPLE and reads_as_words(text):
            found.append(f"line {line}: {text!r}")
    return found


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_every_string_of_the_client_a_person_reads_is_marked(path: Path) -> None:
    assert unmarked_in_script(path.read_text()) == []


def test_the_script_check_finds_what_is_left_out() -> None:
    script = """
    import { gettext } from "./i18n.js"; // "Not this"
    const a = gettext("Fine %(x)s", { x: "Inside the call" });
    const b = `Left ${a} out`;
    el("span", "msg own", "Seen by people");
    if (event.key === "Escape") /ab c/.test("x y");
    const c = ngettext("one file", "%(count)s files", n);
    """
    assert unmarked_in_script(script) == ["line 4: 'Left \\x00 out'", "line 5: 'Seen by people'"]


# -- the catalogs ---------------------------------------------------------------------------


def po_entries(path: Path) -> dict[str, tuple[list[str], bool]]:
    """{msgid: (its msgstr forms, fuzzy)} of a .po file, the header left out."""
    entries: dict[str, tuple[list[str], bool]] = {}
    blocks = re.split(r"\n\s*\n", path.read_text())
    for block in blocks:
        lines = [line for line in block.splitlines() if not line.startswith("#~")]
        fuzzy = any(line.startswith("#,") and "fuzzy" in line for line in lines)
        fields: dict[str, str] = {}
        current = None
        for line in lines:
            if line.startswith("#"):
                continue
            match = re.match(r"(msgid|msgid_plural|msgstr(?:\[\d+\])?|msgctxt) (\".*\")$", line)
            if match:
                current = match.group(1)
                fields[current] = _unquote(match.group(2))
            elif line.startswith('"') and current:
                fields[current] += _unquote(line)
        if "msgid" not in fields or fields["msgid"] == "":
            continue
        forms = [v for k, v in sorted(fields.items()) if k.startswith("msgstr")]
        entries[fields["msgid"]] = (forms, fuzzy)
    return entries


def _unquote(text: str) -> str:
    return bytes(text[1:-1], "utf-8").decode("unicode_escape").encode("latin-1").decode("utf-8")


def gettext_tools() -> bool:
    present = all(shutil.which(tool) for tool in ("xgettext", "msgfmt", "msgmerge"))
    if not present and os.environ.get("CI", "").lower() == "true":
        pytest.fail("GNU gettext (xgettext, msgfmt, msgmerge) is needed to check the catalogs")
    return present


@pytest.fixture(scope="module")
def extracted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the app with its catalogs made afresh by makemessages."""
    if not gettext_tools():
        pytest.skip("GNU gettext is not installed (CI=true makes this a failure)")
    copy = tmp_path_factory.mktemp("i18n") / "linkup"
    shutil.copytree(APP, copy, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DJANGO_SETTINGS_MODULE": "tests.settings"}
    admin = [sys.executable, "-m", "django", "makemessages", "--no-obsolete"]
    for language in LANGUAGES:
        for domain, extra in (("django", ["--ignore=static/*"]), ("djangojs", [])):
            subprocess.run(
                [*admin, "-l", language, "-d", domain, *extra],
                cwd=copy,
                env=env,
                check=True,
                capture_output=True,
            )
    return copy


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("domain", ["django", "djangojs"])
def test_the_catalog_holds_what_the_sources_mark_all_translated(
    extracted: Path, language: str, domain: str
) -> None:
    relative = Path("locale") / language / "LC_MESSAGES" / f"{domain}.po"
    shipped = po_entries(APP / relative)
    current = po_entries(extracted / relative)
    assert sorted(set(current) - set(shipped)) == [], "marked but not in the catalog"
    assert sorted(set(shipped) - set(current)) == [], "in the catalog but marked nowhere"
    untranslated = [msgid for msgid, (forms, _) in shipped.items() if not all(forms)]
    fuzzy = [msgid for msgid, (_, is_fuzzy) in shipped.items() if is_fuzzy]
    assert untranslated == [] and fuzzy == []


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("domain", ["django", "djangojs"])
def test_the_compiled_catalog_says_what_the_po_file_says(
    extracted: Path, tmp_path: Path, language: str, domain: str
) -> None:
    folder = APP / "locale" / language / "LC_MESSAGES"
    fresh = tmp_path / f"{domain}.mo"
    subprocess.run(["msgfmt", "-o", str(fresh), str(folder / f"{domain}.po")], check=True)
    with (folder / f"{domain}.mo").open("rb") as shipped, fresh.open("rb") as made:
        kept = pygettext.GNUTranslations(shipped)._catalog  # type: ignore[attr-defined]
        wanted = pygettext.GNUTranslations(made)._catalog  # type: ignore[attr-defined]
    assert kept == wanted, "compile the catalog again: make messages"


# -- the pages ------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_signed_out_page_follows_the_browser_and_the_chat_carries_the_clients_words(
    client,  # type: ignore[no-untyped-def]
    django_user_model,  # type: ignore[no-untyped-def]
) -> None:
    english = client.get("/sign-in/", HTTP_ACCEPT_LANGUAGE="en")
    spanish = client.get("/sign-in/", HTTP_ACCEPT_LANGUAGE="es-ES,es;q=0.9,en;q=0.5")
    assert b'lang="en"' in english.content and b'lang="es"' in spanish.content
    assert english.content != spanish.content
    assert "Iniciar sesión".encode() in spanish.content or b"Entrar" in spanish.content

    user = django_user_model.objects.create_user("lucia", password="x" * 12)
    client.force_login(user)
    page = client.get("/", HTTP_ACCEPT_LANGUAGE="es")
    assert b'"language": "es"' in page.content
    assert b"Escribiendo" in page.content or b"escribiendo" in page.content
