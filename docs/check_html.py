"""Check the built API page for what Sphinx renders without a warning but
reads wrong (tox -e docs runs it after the build): int's own docstring under
a constant, a "Return type" under a class or an exception.

Usage: python docs/check_html.py BUILD/html/api.html
"""

import re
import sys
from html import unescape
from pathlib import Path


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
    return found


if __name__ == "__main__":
    page = Path(sys.argv[1]).read_text(encoding="utf-8")
    listed = problems(page)
    for line in listed:
        print(f"{sys.argv[1]}: {line}", file=sys.stderr)
    sys.exit(1 if listed else 0)
