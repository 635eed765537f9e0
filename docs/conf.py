"""Sphinx configuration: MyST Markdown pages, furo theme, API from docstrings."""

# The docs describe the installed package (tox -e docs installs it): the
# checkout's sessionid_cffi/ folder lacks emulation/, mapped in only at install.
from sessionid_cffi import __version__

project = "sessionid-cffi"
author = "sessionid-cffi developers"
copyright = "2026, sessionid-cffi developers"
release = version = __version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.doctest",  # runs the API page's examples: sphinx-build -b doctest
    "sphinx.ext.napoleon",
]
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
    # use_backend's type variable (the backend type it hands back), and the
    # kit's private World that RULES' functions take.
    (r"py:class", r"_BackendT|World"),
    # users()' entries: psutil's suser, not exported; users() documents its fields.
    (r"py:class", r"sessionid_cffi\.suser"),
]


def _drop_class_return_type(app: object, domain: str, objtype: str, contentnode: object) -> None:
    """A class's signature is its __init__'s, whose "-> None" autodoc turns
    into a "Return type: None" field: meaningless for a class, so dropped."""
    from docutils import nodes

    if domain != "py" or objtype not in ("class", "exception"):
        return
    for field_list in list(contentnode.findall(nodes.field_list)):  # type: ignore[attr-defined]
        for item in list(field_list):
            if item[0].astext() in ("rtype", "Return type"):  # before / after docfields
                field_list.remove(item)
        if not len(field_list):
            field_list.parent.remove(field_list)


def setup(app: object) -> None:
    # After autodoc's own handler (priority 500) has added the type fields.
    app.connect("object-description-transform", _drop_class_return_type, priority=900)  # type: ignore[attr-defined]
