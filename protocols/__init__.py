"""citygate wire contract: the one copy the controller and the firmware share.

Pure code, no I/O. Runs on CPython 3.11+ and on MicroPython 1.29, so it only
uses what both have: json, hashlib, and plain integer arithmetic.
"""

CONTRACT_VERSION = 1
