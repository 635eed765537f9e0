"""``python -m sessionid_cffi``: the ``sessionid`` command."""

import sys

from ._cli import main

sys.exit(main())
