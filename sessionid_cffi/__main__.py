"""``python -m sessionid_cffi``: the ``sessionid`` command."""

from ._cli import run

run()
