"""linkup.core.confusables: UTS #39 skeletons and the username key.

Three kinds of test: the data file (read completely, the rows we rely on); known pairs; and
properties, either over every code point (exhaustive, so a proof for the data we ship; see
the module's docstring for why single code points settle strings) or by Hypothesis.
"""

from __future__ import annotations

import functools
import re
import subprocess
import sys
import time
import unicodedata
from pathlib import Path

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from linkup.core import confusables
from linkup.core.confusables import data_version, skeleton, username_skeleton

# What it tests does not depend on the database or the channel layer.
pytestmark = pytest.mark.embedded_only

DATA = Path(confusables.__file__).with_name("confusables.txt")
TABLE = confusables._data()[1]
MAPPINGS = 6311  # "# total:" of confusables.txt 15.0.0


def nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


def nfkc(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


# Sources NFD can leave in a string (the others are decomposed before the lookup).
REACHABLE = sorted(chr(cp) for cp in TABLE if nfd(chr(cp)) == chr(cp))
# Reachable sources whose prototype, decomposed, holds a source: skeleton is not idempotent there.
UNSETTLED = frozenset(c for c in REACHABLE if any(ord(p) in TABLE for p in nfd(TABLE[ord(c)])))
# Every code point a source or a prototype mentions: Hypothesis draws from these often.
MENTIONED = sorted({chr(cp) for cp in TABLE} | {p for value in TABLE.values() for p in value})


@functools.cache
def all_code_points() -> tuple[str, ...]:
    return tuple(chr(cp) for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF)


@functools.cache
def skeleton_moving_code_points() -> tuple[str, ...]:
    """The code points skeleton changes (sources, or NFD changes them): the rest are fixed."""
    return tuple(c for c in all_code_points() if ord(c) in TABLE or nfd(c) != c)


@functools.cache
def moving_code_points() -> tuple[str, ...]:
    """The code points some step of username_skeleton changes; every other one is fixed."""
    return tuple(
        c
        for c in all_code_points()
        if ord(c) in TABLE or c.casefold() != c or unicodedata.normalize("NFKD", c) != c or c == "i"
    )


# Mostly anything, often the characters the data talks about, sometimes ASCII.
chars = st.one_of(st.characters(), st.sampled_from(MENTIONED), st.characters(max_codepoint=0x7F))
texts = st.text(chars, max_size=24)

# --- the data --------------------------------------------------------------------------------


def test_the_data_file_is_read_completely() -> None:
    lines = DATA.read_text("utf-8").splitlines()
    rows = [line for line in lines if line and not line.startswith("#")]
    assert all(re.fullmatch(r"[0-9A-F]{4,6}\t[0-9A-F]{4,6}( [0-9A-F]{4,6})*", r) for r in rows)
    assert f"# Mappings: {len(rows)}" in lines
    assert len(rows) == len(TABLE) == MAPPINGS
    # Written back from what was read, the table is the file's rows, in order: nothing dropped,
    # merged or misread.
    written = [f"{cp:04X}\t{' '.join(f'{ord(p):04X}' for p in TABLE[cp])}" for cp in TABLE]
    assert written == rows


def test_the_data_file_names_its_version_source_and_licence() -> None:
    header = DATA.read_text("utf-8").split("\n0", 1)[0]
    assert data_version() == "15.0.0"
    assert "# Version: 15.0.0" in header
    assert re.search(r"# SHA-256: [0-9a-f]{64}\n", header)
    assert "COPYRIGHT AND PERMISSION NOTICE" in header
    assert "Unicode, Inc." in header


def test_a_damaged_data_file_is_refused() -> None:
    text = DATA.read_text("utf-8")
    assert confusables._parse(text) == confusables._data()
    lines = text.splitlines()
    truncated = "\n".join(lines[:-1])
    with pytest.raises(confusables.DataError, match="6310 mappings read"):
        confusables._parse(truncated)
    duplicated = "\n".join([*lines[:-1], lines[-2]])
    with pytest.raises(confusables.DataError, match="6310 mappings read"):
        confusables._parse(duplicated)
    with pytest.raises(confusables.DataError):
        confusables._parse(text.replace("\t", " ", 1))


@pytest.mark.parametrize(
    ("source", "prototype"),
    [
        ("I", "l"),  # LATIN CAPITAL LETTER I
        ("1", "l"),
        ("|", "l"),
        ("0", "O"),
        ("m", "rn"),
        ("\u0430", "a"),  # CYRILLIC SMALL LETTER A
        ("\u03bf", "o"),  # GREEK SMALL LETTER OMICRON
        ("\u0391", "A"),  # GREEK CAPITAL LETTER ALPHA
        ("\u01c4", "DZ\u030c"),  # LATIN CAPITAL LETTER DZ WITH CARON: D, Z WITH CARON
    ],
)
def test_rows_we_rely_on(source: str, prototype: str) -> None:
    assert nfd(TABLE[ord(source)]) == nfd(prototype)


def test_the_table_is_read_on_first_use_and_quickly() -> None:
    probe = (
        "from linkup.core import confusables as c\n"
        "before = c._data.cache_info().currsize\n"
        "c.skeleton('x')\n"
        "print(before, c._data.cache_info().currsize)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.split() == ["0", "1"]
    # Reading and parsing, best of five (the first import of the module is not counted).
    timings = []
    for _ in range(5):
        start = time.perf_counter()
        confusables._data.__wrapped__()
        timings.append(time.perf_counter() - start)
    assert min(timings) < 0.05


# --- known pairs -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ("\u0430lice", "alice"),  # Cyrillic a
        ("paypaI", "paypal"),  # capital i
        ("\u03bf", "o"),  # Greek omicron
        ("m", "rn"),  # confusables.txt has m -> rn
        ("modern", "rnodern"),
        ("a1ice", "alice"),
        ("\u039a\u0391\u03a4\u0395", "KATE"),  # Greek capitals
        ("\u0455\u0441\u043e\u0440\u0435", "scope"),  # Cyrillic dze, es, o, er, ie
    ],
)
def test_known_confusables_share_a_skeleton(left: str, right: str) -> None:
    assert skeleton(left) == skeleton(right)


def test_skeleton_keeps_case_as_uts39_does() -> None:
    assert skeleton("ALICE") == "ALlCE"
    assert skeleton("ALICE") != skeleton("alice")
    assert skeleton("\u01c4") == "DZ\u030c"  # one pass: the caron is left for the next


def test_the_names_from_the_brief_share_one_key() -> None:
    names = ["alice", "ALICE", "\u0430lice", "aIice", "a1ice", "Alice", "\u0410LICE"]
    assert {username_skeleton(name) for name in names} == {"allce"}


@pytest.mark.parametrize(
    "group",
    [
        ["paypal", "PAYPAL", "paypaI", "PayPal", "\u0440\u0430\u0443\u0440\u0430l"],
        ["bob", "BOB", "b0b", "B0B", "\u0412\u041e\u0412"],  # Cyrillic VE, O, VE
        ["kate", "KATE", "\u039a\u0391\u03a4\u0395", "\u041a\u0410\u0422\u0415"],
        ["m", "M", "rn", "RN", "Rn"],
        ["\uff41\uff4c\uff49\uff43\uff45", "alice"],  # fullwidth: NFKC first
    ],
)
def test_look_alikes_and_case_variants_share_a_key(group: list[str]) -> None:
    assert len({username_skeleton(name) for name in group}) == 1


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ("alice", "alicia"),
        ("bob", "rob"),
        ("anna", "hanna"),
        ("kate", "kata"),
        ("user_2", "user_3"),
        ("a.b", "a-b"),
        ("emil", "email"),
        ("o", "c"),
    ],
)
def test_different_names_keep_different_keys(left: str, right: str) -> None:
    assert username_skeleton(left) != username_skeleton(right)


def test_the_price_of_folding_i_into_l() -> None:
    # Documented trade-off: names differing only in i/l collide (see the module's docstring).
    assert username_skeleton("neil") == username_skeleton("nell") == username_skeleton("NEIL")


# --- skeleton: idempotence -------------------------------------------------------------------


def test_skeleton_settles_after_two_passes_for_every_code_point() -> None:
    # Enough for every string (module docstring): skeleton(skeleton(x)) is a fixed point.
    twice = [skeleton(skeleton(c)) for c in skeleton_moving_code_points()]
    assert [s for s in twice if skeleton(s) != s] == []
    assert len(twice) > len(TABLE)


def test_skeleton_is_idempotent_except_on_the_unsettled_sources() -> None:
    moved = {c for c in skeleton_moving_code_points() if skeleton(skeleton(c)) != skeleton(c)}
    assert moved == UNSETTLED
    assert len(UNSETTLED) == 13
    # And replacing a reachable source always changes the string (so "fixed point" is exactly
    # "no source left in it").
    assert all(nfd(TABLE[ord(c)]) != c for c in REACHABLE)


@settings(max_examples=300)
@given(texts)
@example("\u01c4")
@example("\ufe81")
def test_skeleton_of_a_skeleton_is_a_fixed_point(text: str) -> None:
    twice = skeleton(skeleton(text))
    assert skeleton(twice) == twice
    assert all(ord(c) not in TABLE for c in twice)


@settings(max_examples=300)
@given(st.text(st.one_of(chars, st.sampled_from(sorted(UNSETTLED))), max_size=12))
def test_skeleton_is_idempotent_exactly_on_strings_without_unsettled_sources(text: str) -> None:
    once = skeleton(text)
    assert (skeleton(once) == once) == UNSETTLED.isdisjoint(nfd(text))


# --- skeleton and the key on plain names -----------------------------------------------------


ascii_names = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789._@+-"), max_size=30)
safe_names = st.text(st.sampled_from("abcdefghjknopqrstuvwxyz23456789._@+-"), max_size=30)


@settings(max_examples=200)
@given(ascii_names)
def test_lowercase_ascii_names_change_only_at_m_0_1_and_i(name: str) -> None:
    assert skeleton(name) == name.replace("m", "rn").replace("0", "O").replace("1", "l")
    key = name.replace("m", "rn").replace("0", "o").replace("1", "l").replace("i", "l")
    assert username_skeleton(name) == key


@settings(max_examples=200)
@given(safe_names, safe_names)
def test_names_without_look_alike_letters_are_their_own_keys(left: str, right: str) -> None:
    # Without i, l, m, 0 and 1 the key is the name itself: distinct names keep distinct keys.
    assert skeleton(left) == username_skeleton(left) == left
    assert (username_skeleton(left) == username_skeleton(right)) == (left == right)


@settings(max_examples=200)
@given(st.text(st.characters(max_codepoint=0x7F), max_size=30))
def test_the_key_ignores_case_for_ascii(name: str) -> None:
    key = username_skeleton(name)
    assert username_skeleton(name.casefold()) == key
    assert username_skeleton(name.upper()) == key
    assert username_skeleton(name.swapcase()) == key


def test_where_the_key_does_not_ignore_case() -> None:
    # Capitals whose small letters have unrelated prototypes: the uniqueness check must keep
    # comparing casefolded names too (module docstring). None is ASCII; ETH alone in Latin-1.
    differ = [
        c for c in moving_code_points() if username_skeleton(c) != username_skeleton(c.casefold())
    ]
    assert [c for c in differ if ord(c) < 0x100] == ["\u00d0"]
    assert 200 < len(differ) < 300
    assert username_skeleton("\u039a") == "k" != username_skeleton("\u03ba")  # KAPPA, kappa


# --- the key: a fixed point, reached in bounded time, a function of the skeleton --------------


def test_every_code_point_settles_within_the_rounds_allowed() -> None:
    # Every other code point is a fixed point of a round, so this covers all strings (module
    # docstring): username_skeleton's loop always ends on a fixed point.
    fold = confusables._fold
    worst = 0
    for c in moving_code_points():
        text, rounds = fold(c), 1
        while fold(text) != text:
            text, rounds = fold(text), rounds + 1
            assert rounds < confusables._MAX_ROUNDS
        worst = max(worst, rounds)
    assert worst + 1 <= confusables._MAX_ROUNDS
    assert worst == 3  # with the 15.0 data; the docstring says "at most 4 rounds"


@settings(max_examples=300)
@given(texts)
@example("%")
@example("\u01c4")
@example("M")
def test_the_key_is_a_fixed_point_and_idempotent(name: str) -> None:
    key = username_skeleton(name)
    assert confusables._fold(key) == key
    assert username_skeleton(key) == key


# What a look-alike substitution keeps: swap a source for its prototype and the skeleton stays,
# provided the source is a starter (canonical class 0: NFD never moves it) and the rest holds no
# source. Not so for combining marks: U+05AE HEBREW ACCENT ZINOR (class 228) has the prototype
# U+0598 ZARQA (class 230), so after "\u00c8" (E, grave accent: 230) the first NFD puts the
# zinor before the grave, the prototype stays after it, and the skeletons differ. That is UTS
# #39's algorithm, not ours; Django's username validator refuses lone combining marks.
STARTER_SOURCES = [
    c for c in REACHABLE if c not in UNSETTLED and unicodedata.combining(c) == 0 and nfkc(c) == c
]


def _sourceless(c: str) -> bool:
    return all(ord(p) not in TABLE for p in nfd(c))


plain_chars = st.one_of(
    st.characters().filter(_sourceless),
    st.sampled_from([c for c in MENTIONED if _sourceless(c)]),
    st.sampled_from([chr(cp) for cp in range(0x80) if _sourceless(chr(cp))]),
)


def test_a_combining_source_can_part_from_its_prototype() -> None:
    # The limit above, pinned: UTS #39 skeletons differ though the glyphs are confusable.
    assert nfd(TABLE[0x05AE]) == "\u0598"
    assert skeleton("\u00c8\u05ae") != skeleton("\u00c8\u0598")
    assert skeleton("E\u05ae") == skeleton("E\u0598")  # with no other mark, no reordering


@st.composite
def look_alike_pairs(draw: st.DrawFn) -> tuple[str, str]:
    """A name and the same name with some prototypes replaced by a source that maps to them."""
    part = st.one_of(
        plain_chars.map(lambda c: (c, c)),
        st.sampled_from(STARTER_SOURCES).map(lambda c: (c, TABLE[ord(c)])),
    )
    parts = draw(st.lists(part, max_size=12))
    return "".join(a for a, _ in parts), "".join(b for _, b in parts)


@settings(max_examples=300)
@given(look_alike_pairs())
@example(("\u0430lice", "alice"))
def test_what_skeleton_calls_confusable_shares_a_key(pair: tuple[str, str]) -> None:
    variant, original = pair
    assert skeleton(variant) == skeleton(original)
    # The key promises as much for NFKC-normalized names (Django stores usernames so); NFKC
    # may part the two (a prototype can be a compatibility character: "%" has "\u00ba/\u2080").
    assume(skeleton(nfkc(variant)) == skeleton(nfkc(original)))
    assert username_skeleton(variant) == username_skeleton(original)
