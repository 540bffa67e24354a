"""citygate gateway firmware (MicroPython)."""

FW_VERSION = "0.1.0"
