"""Check the built API page for what Sphinx renders without a warning but
reads wrong (tox -e docs runs it after the build): int's own docstring under
a constant, a "Return type" under a class or an exception, a "Type" field
made of prose (Napoleon reads a first line "text (Windows: more)" as
"type: description"), and parameters typed ``object`` under a class (a
signature such as ``(*values, **named)`` instead of the class's fields).

Usage: python docs/check_html.py BUILD/html/api.html
"""

import re
import sys
from html import unescape
from pathlib import Path

# A type as autodoc and Napoleon write one: names, dots, brackets, commas,
# "|", "*" and "..." (``dict[str, Callable[[Backend, World], None]]``,
# ``int | None``). Two words side by side, or anything else, is prose.
_TYPE = re.compile(r"[\w.]+(\s*(\||,|\[|\]|\.\.\.)\s*[\w.]*)*\]*")


def is_type(text: str) -> bool:
    return _TYPE.fullmatch(" ".join(text.split())) is not None


def problems(html: str) -> list[str]:
    found = []
    if "int([x])" in html:
        found.append("a constant shows int's own docstring")
    # Each documented object: its id, its kind (the first word of its
    # signature) and the text of its description.
    for match in re.finditer(
        r'<dl class="py (\w+)">\s*<dt class="sig sig-object py" id="([^"]+)">(.*?)</dl>', html, re.S
    ):
        kind, name, body = match.groups()
        own = body.split('<dl class="py ')[0]  # before its members' entries
        text = unescape(re.sub(r"<[^>]+>", " ", own))
        if kind in ("class", "exception") and "Return type" in text:
            found.append(f"{name} shows a return type")
        type_fields = r'>Type<span class="colon">:</span></dt>\s*<dd[^>]*>(.*?)</dd>'
        for field in re.finditer(type_fields, own, re.S):
            shown = " ".join(unescape(re.sub(r"<[^>]+>", "", field[1])).split())
            if not is_type(shown):
                found.append(f"{name} shows prose as its type: {shown!r}")
        if kind in ("class", "exception"):
            for parameter in re.findall(r"(\w+)\s*\(\s*object\s*\)", text):
                found.append(f"{name} shows a parameter {parameter!r} typed object")
    return found


if __name__ == "__main__":
    page = Path(sys.argv[1]).read_text(encoding="utf-8")
    listed = problems(page)
    for line in listed:
        print(f"{sys.argv[1]}: {line}", file=sys.stderr)
    sys.exit(1 if listed else 0)
