"""The backend protocols, for the package's own type annotations.

They are defined in their public home, ``sessionid_cffi.lowlevel`` (where
help() and ``inspect.getsource()`` find them); this module only names them
for ``from ._interface import Backend`` under TYPE_CHECKING and for the
package's lazy ``sessionid_cffi.Backend``.
"""

from .lowlevel import Backend, FixedSessionBackend, NativeBackend, RecordingBackend

__all__ = ["Backend", "FixedSessionBackend", "NativeBackend", "RecordingBackend"]
