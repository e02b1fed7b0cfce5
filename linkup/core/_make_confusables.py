"""Rebuild `confusables.txt` (beside this file) from Unicode's confusables.txt.

    python -m linkup.core._make_confusables PATH/TO/confusables.txt [--origin TEXT]

The input is the data file of Unicode Technical Standard #39 (Unicode Security Mechanisms),
https://www.unicode.org/Public/security/<version>/confusables.txt; ICU's source tree carries a
copy as icu/source/data/unidata/confusables.txt. The output keeps every mapping and nothing
else: one line a mapping, the source code point in hex, a tab, the prototype's code points in
hex separated by spaces, sorted by source. Its header names the version, date and SHA-256 of
the input and carries Unicode's copyright and permission notice, which the licence asks to
travel with every copy of the data.

Not imported by the application: standard library only, run by hand when Unicode publishes a
new version (then run tests/test_confusables.py, whose exhaustive checks cover the new data).
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
from pathlib import Path

OUTPUT = Path(__file__).with_name("confusables.txt")

# Unicode's licence for its data files (the "COPYRIGHT AND PERMISSION NOTICE" of
# https://www.unicode.org/license.txt as of the 15.0 data); {years} is filled in from the
# copyright line of the input.
NOTICE = """\
COPYRIGHT AND PERMISSION NOTICE

Copyright © {years} Unicode, Inc. All rights reserved.
Distributed under the Terms of Use in https://www.unicode.org/copyright.html.

Permission is hereby granted, free of charge, to any person obtaining
a copy of the Unicode data files and any associated documentation
(the "Data Files") or Unicode software and any associated documentation
(the "Software") to deal in the Data Files or Software
without restriction, including without limitation the rights to use,
copy, modify, merge, publish, distribute, and/or sell copies of
the Data Files or Software, and to permit persons to whom the Data Files
or Software are furnished to do so, provided that either
(a) this copyright and permission notice appear with all copies
of the Data Files or Software, or
(b) this copyright and permission notice appear in associated
Documentation.

THE DATA FILES AND SOFTWARE ARE PROVIDED "AS IS", WITHOUT WARRANTY OF
ANY KIND, EXPRESS OR IMPLIED, INCLUDING BUT NOT LIMITED TO THE
WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND
NONINFRINGEMENT OF THIRD PARTY RIGHTS.
IN NO EVENT SHALL THE COPYRIGHT HOLDER OR HOLDERS INCLUDED IN THIS
NOTICE BE LIABLE FOR ANY CLAIM, OR ANY SPECIAL INDIRECT OR CONSEQUENTIAL
DAMAGES, OR ANY DAMAGES WHATSOEVER RESULTING FROM LOSS OF USE,
DATA OR PROFITS, WHETHER IN AN ACTION OF CONTRACT, NEGLIGENCE OR OTHER
TORTIOUS ACTION, ARISING OUT OF OR IN CONNECTION WITH THE USE OR
PERFORMANCE OF THE DATA FILES OR SOFTWARE.

Except as contained in this notice, the name of a copyright holder
shall not be used in advertising or otherwise to promote the sale,
use or other dealings in these Data Files or Software without prior
written authorization of the copyright holder."""

_CODE_POINT = re.compile(r"[0-9A-F]{4,6}")


class SourceError(ValueError):
    """The input is not a confusables.txt this generator understands."""


def _code_point(field: str, where: str) -> int:
    if not _CODE_POINT.fullmatch(field):
        raise SourceError(f"{where}: not a code point: {field!r}")
    value = int(field, 16)
    if value > 0x10FFFF or 0xD800 <= value <= 0xDFFF:
        raise SourceError(f"{where}: not a Unicode scalar value: {field}")
    return value


def parse(text: str) -> tuple[dict[str, str], dict[int, tuple[int, ...]]]:
    """The header fields (version, date, copyright, total) and the mappings of confusables.txt.

    Strict: every data line must be `SOURCE ; TARGET... ; MA # comment`, each source once, and
    the count must match the file's own `# total:` line."""
    header: dict[str, str] = {}
    mappings: dict[int, tuple[int, ...]] = {}
    for number, raw in enumerate(text.lstrip("\ufeff").splitlines(), start=1):
        where = f"line {number}"
        data, _, comment = raw.partition("#")
        if not data.strip():
            comment = comment.strip()
            for field in ("Version", "Date", "total"):
                if comment.startswith(f"{field}:"):
                    header.setdefault(field, comment.partition(":")[2].strip())
            if comment.startswith("©") and "copyright" not in header:
                header["copyright"] = comment
            continue
        fields = [field.strip() for field in data.split(";")]
        if len(fields) != 3:
            raise SourceError(f"{where}: expected 3 fields, got {len(fields)}")
        source, target, kind = fields
        if kind != "MA":
            raise SourceError(f"{where}: mapping type {kind!r}, expected 'MA'")
        key = _code_point(source, where)
        if key in mappings:
            raise SourceError(f"{where}: U+{key:04X} mapped twice")
        value = tuple(_code_point(part, where) for part in target.split())
        if not value:
            raise SourceError(f"{where}: empty target")
        mappings[key] = value
    for field in ("Version", "Date", "total", "copyright"):
        if field not in header:
            raise SourceError(f"no {field!r} line in the header")
    if int(header["total"]) != len(mappings):
        raise SourceError(f"{len(mappings)} mappings, but the file says total: {header['total']}")
    return header, mappings


def render(source: bytes, *, origin: str = "") -> str:
    """The text of our data file for the bytes of an upstream confusables.txt."""
    header, mappings = parse(source.decode("utf-8"))
    years = re.search(r"\d{4}", header["copyright"])
    if years is None:
        raise SourceError(f"no year in the copyright line {header['copyright']!r}")
    lines = [
        "# The prototypes (the MA mappings) of Unicode's confusables.txt, for",
        "# linkup/core/confusables.py. Generated by linkup/core/_make_confusables.py:",
        "# do not edit by hand.",
        "#",
        "# Format: one mapping a line: the source code point in hex, a tab, then the code points",
        "# of its prototype in hex separated by single spaces; sorted by source. Lines",
        "# starting with '#' are comments.",
        "#",
        "# Source: confusables.txt, Unicode Security Mechanisms for UTS #39",
        f"# Version: {header['Version']}",
        f"# Date: {header['Date']}",
        f"# SHA-256: {hashlib.sha256(source).hexdigest()}",
    ]
    if origin:
        lines.append(f"# Origin: {origin}")
    lines += [
        f"# Mappings: {len(mappings)}",
        "#",
        f"# {header['copyright']}",
        "# Unicode and the Unicode Logo are registered trademarks of Unicode, Inc.",
        "# in the U.S. and other countries.",
        "# For terms of use, see https://www.unicode.org/terms_of_use.html",
        "#",
    ]
    notice = NOTICE.format(years=f"1991-{years.group()}")
    lines += [f"# {line}".rstrip() for line in notice.splitlines()]
    lines += [
        f"{key:04X}\t{' '.join(f'{cp:04X}' for cp in value)}"
        for key, value in sorted(mappings.items())
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="Unicode's confusables.txt")
    parser.add_argument("--origin", default="", help="where the input came from (for the header)")
    parser.add_argument("--output", type=Path, default=OUTPUT, help=f"default: {OUTPUT}")
    args = parser.parse_args(argv)
    try:
        text = render(args.source.read_bytes(), origin=args.origin)
    except SourceError as exc:
        print(f"{args.source}: {exc}", file=sys.stderr)
        return 1
    args.output.write_text(text, encoding="utf-8", newline="\n")
    print(f"wrote {args.output} ({len(text.encode())} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
