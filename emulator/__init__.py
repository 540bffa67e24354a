"""The emulated board (DESIGN section 8): the real firmware on the MicroPython unix port, its modems,
FXO lines and flash emulated on this machine. Used by `citygate demo`, `citygate board emulate` and the rigs."""
