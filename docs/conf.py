"""Sphinx configuration: MyST Markdown pages, furo theme, API from docstrings."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from sessionid_cffi import __version__

project = "sessionid-cffi"
author = "sessionid-cffi developers"
copyright = "2026, sessionid-cffi developers"
release = version = __version__

extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinx.ext.napoleon"]
myst_heading_anchors = 3
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build"]
html_theme = "furo"
html_title = f"sessionid-cffi {release}"
autodoc_member_order = "bysource"
autodoc_typehints = "description"
nitpick_ignore_regex = [
    (r"py:.*", r"(cffi|_cffi_backend|CData|Backend|World|argparse)\..*"),
    # No network at build time, so no intersphinx: standard-library and
    # Hypothesis types in signatures stay plain text.
    (r"py:class", r"(collections\.abc|hypothesis\.strategies|st|typing)\..*"),
    (r"py:class", r"sessionid_cffi\.testing\._worlds\..*"),
    (r"py:class", r".*CData.*"),
]
