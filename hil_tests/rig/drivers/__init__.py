"""Drivers of a real bench's parts: the board's serial console, a Modbus power relay, AT-command GSM modems."""
