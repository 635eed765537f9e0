"""pytest plugin (entry point ``pytest11``): fixtures of the test kit.

Loaded by pytest in every project that installs sessionid-cffi; it only
defines fixtures, so it changes nothing unless a test asks for one.
"""
