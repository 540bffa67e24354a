"""Board entry point: `micropython main.py [board.json]` on the unix port; main.py at / on an ESP32."""

import sys

from gw import app

app.main(sys.argv[1] if len(sys.argv) > 1 else None)
