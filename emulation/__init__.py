"""Backends that emulate the Win32 contract without Windows.

Shipped as ``sessionid_cffi.emulation``: ``procfs`` (Linux, the kernel
audit login session) and ``model`` (an in-memory table, the oracle of the
property tests and the fake for users' tests).
"""
