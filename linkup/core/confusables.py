"""Skeletons of Unicode Technical Standard #39, to refuse look-alike usernames.

Two strings that look the same ("paypal" in Latin letters and "p\\u0430yp\\u0430l" with the
Cyrillic letter a, U+0430) have the same *skeleton*. A skeleton is a key for comparing, never
a name to show: it mixes scripts and is not itself a valid identifier.

`skeleton(text)`
    Exactly the skeleton of UTS #39 section 4 (Confusable Detection): NFD, then each code
    point replaced by its prototype from confusables.txt (the MA table, the only one the file
    still has), then NFD again. Case counts: "I" (capital i) becomes "l", "ALICE" and "alice"
    differ.

    It is *not* idempotent for every input, and nothing in the algorithm makes it so: with the
    15.0 data, 13 code points map to a prototype whose decomposition holds another source
    (U+01C4 LATIN CAPITAL LETTER DZ WITH CARON becomes "D", "Z", U+030C COMBINING CARON, and
    the caron is itself confusable with U+0306 COMBINING BREVE). What does hold, for every
    string: skeleton(x) is a fixed point exactly when no code point of it is a source of the
    table; and a second pass always gets there, so skeleton(skeleton(skeleton(x))) ==
    skeleton(skeleton(x)). tests/test_confusables.py proves the second by checking every code
    point, which covers every string: which code points a pass yields depends only on which
    code points it is given (NFD, the table, and below casefold and NFKD, each work on one
    code point at a time; only the canonical reordering of combining marks looks at the
    neighbours, and it moves code points without changing them).

    Equal skeletons mean confusable; the converse has a gap of UTS #39's own: a combining mark
    whose prototype has another combining class can be sorted elsewhere. U+05AE HEBREW ACCENT
    ZINOR (class 228) has the prototype U+0598 ZARQA (class 230): after a letter with a grave
    accent (230) the first NFD puts the zinor before the grave, the zarqa stays after it, and
    the skeletons differ. Usernames rarely meet it: Django's validator refuses the combining
    marks NFKC leaves standing alone.

`username_skeleton(name)`
    The key for usernames: the names one would mistake for each other, ignoring case, share
    it. `alice`, `ALICE`, `\\u0430lice` (Cyrillic a), `aIice` (capital i) and `a1ice` all
    give "allce". It is NFKC(name) (as Django stores usernames) run through

        skeleton, then casefold, then NFKD, then every "i" replaced by "l"

    again and again until nothing changes (at most 4 rounds: the tests prove it for every code
    point, hence for every string, as above). Why each part:

    * skeleton before casefold: capitals have prototypes of their own that their small letters
      do not share. Greek "\\u039a\\u0391\\u03a4\\u0395" looks exactly like "KATE" and gets
      its key "kate", but casefolded first it would be "\\u03ba\\u03b1\\u03c4\\u03b5", whose
      prototypes are kra, a, small capital T and open e. And "I" is confusable with "l" only
      as a capital.
    * casefold after the skeleton, so that the key ignores case as the uniqueness check does:
      "PAYPAL" and "paypal" share a key, and so do "B0B" and "bob" (0 is confusable with O).
    * "i" into "l": capital I is at once the capital of i and (per confusables.txt) the twin
      of l, so no order of casefold and skeleton alone gives "alice", "ALICE" and "aIice" one
      key (skeleton first turns ALICE into "ALlCE", then "allce"; casefold first turns aIice
      into "aiice"). The fold makes i, I, l, L, 1 and | one letter in the key. The price: names
      that differ only there collide ("neil" and "nell", "ali" and "all"). A similar price,
      straight from confusables.txt, is "m" against "rn" (and so "M" against "RN").
    * NFKD and the repetition: prototypes may themselves have prototypes after decomposition
      (the 13 above), be compatibility characters ("%" has the prototype "\\u00ba/\\u2080",
      the ordinal o), or lowercase into a source ("M" into "m", whose prototype is "rn").
      Going to the fixed point makes the key stable: username_skeleton of a key is the key,
      so a stored key can be compared with a fresh one.

    What it promises, for NFKC-normalized names a and b (Django normalizes usernames):

    * skeleton(a) == skeleton(b) implies username_skeleton(a) == username_skeleton(b): it is a
      function of the skeleton, so nothing UTS #39 calls confusable gets through.
    * username_skeleton(a) == username_skeleton(a.casefold()) for every ASCII name, and for
      most others, but not all: some capitals and their small letters have unrelated
      prototypes (Greek and Cyrillic capital KA give "k", their small letters "\\u0138", kra;
      Cyrillic EN "h" but en "\\u029c"; about 250 code points with the 15.0 data, none of them
      ASCII, U+00D0 ETH the only one in Latin-1). So this key does not replace the
      case-insensitive comparison: refuse a name when its casefold *or* its key matches an
      existing one's.

Data: confusables.txt version 15.0.0, reduced to `confusables.txt` beside this module by
`_make_confusables.py` (its header has the source's checksum and Unicode's licence). It is read
on first use, not at import (about 10 ms), and never from the network. NFD, NFKC, NFKD and
casefold are Python's (`unicodedata.unidata_version`: 14.0.0 on Python 3.11), so a key can
change with the Python version or the data for the few code points either changed: keep
`data_version()` and `unicodedata.unidata_version` beside any stored key, and recompute on a
change.

Pure: the standard library only.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Callable
from importlib import resources

__all__ = ["data_version", "skeleton", "username_keys", "username_skeleton"]

_DATA = "confusables.txt"
# The capital I is both the capital of i and confusable with l: fold i into l (see above).
_I_INTO_L = {ord("i"): "l"}
# Enough for every code point with the 15.0 data (3 rounds at most, then one to see that nothing
# changes); tests/test_confusables.py checks every code point against it.
_MAX_ROUNDS = 8


class DataError(RuntimeError):
    """The packaged confusables data is missing or damaged."""


@functools.cache
def _data() -> tuple[str, dict[int, str]]:
    """The data file's version and its mappings as a `str.translate` table, read once."""
    return _parse(resources.files(__package__ or "linkup.core").joinpath(_DATA).read_text("utf-8"))


def _parse(text: str) -> tuple[str, dict[int, str]]:
    """The version and the mappings of the data file's text, checked against its header."""
    version = declared = ""
    table: dict[int, str] = {}
    try:
        for line in text.splitlines():
            if not line or line[0] == "#":
                if line.startswith("# Version: "):
                    version = line.removeprefix("# Version: ")
                elif line.startswith("# Mappings: "):
                    declared = line.removeprefix("# Mappings: ")
                continue
            source, target = line.split("\t")
            if " " in target:  # most prototypes are one code point: no join for those
                table[int(source, 16)] = "".join([chr(int(cp, 16)) for cp in target.split(" ")])
            else:
                table[int(source, 16)] = chr(int(target, 16))
    except ValueError as exc:
        raise DataError(f"{_DATA}: {exc}") from None
    if not version or not declared.isdigit() or int(declared) != len(table):
        raise DataError(f"{_DATA}: {len(table)} mappings read, its header says {declared!r}")
    return version, table


def data_version() -> str:
    """The version of confusables.txt the skeletons come from, e.g. "15.0.0"."""
    return _data()[0]


def skeleton(text: str) -> str:
    """The UTS #39 skeleton of `text`: NFD, each code point to its prototype, NFD."""
    decomposed = unicodedata.normalize("NFD", text)
    return unicodedata.normalize("NFD", decomposed.translate(_data()[1]))


def _fold(text: str) -> str:
    """One round of `username_skeleton`."""
    folded = unicodedata.normalize("NFKD", skeleton(text).casefold())
    return folded.translate(_I_INTO_L)


def username_skeleton(name: str) -> str:
    """The confusability key of a username: equal keys, names to refuse as look-alikes.

    See the module's docstring for what it is and what it promises."""
    return _settle(unicodedata.normalize("NFKC", name), _fold)


def _settle(text: str, step: Callable[[str], str]) -> str:
    for _ in range(_MAX_ROUNDS):
        after = step(text)
        if after == text:
            break
        text = after
    return text


def _looks(text: str) -> str:
    return unicodedata.normalize("NFKD", skeleton(text).casefold())


def _caseless(text: str) -> str:
    return unicodedata.normalize("NFKD", skeleton(text.casefold()))


def username_keys(name: str) -> tuple[str, str]:
    """Two confusability keys of a username, without `username_skeleton`'s i-into-l fold
    (which also parts nothing UTS #39 joins, but joins "neil" and "nell"): what registration
    compares, key by key, with every existing name's.

    * as written: skeleton first, then casefold ("aIice", with a capital i, looks like
      "alice": the skeleton turns the I into l);
    * caseless: casefold first, then skeleton ("ALICE" and "alice", which the skeleton of
      the capitals alone would part: "ALlCE").

    Each is taken to its fixed point (NFKD between rounds), so a key's keys are itself."""
    normal = unicodedata.normalize("NFKC", name)
    return _settle(normal, _looks), _settle(normal, _caseless)
