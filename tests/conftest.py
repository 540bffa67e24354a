import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VECTORS = REPO / "tests" / "vectors"
if str(VECTORS) not in sys.path:
    sys.path.insert(0, str(VECTORS))

# Shared fixtures: real brokers (Mosquitto, amqtt) on free loopback ports.
pytest_plugins = ["tests.fixtures_brokers", "tests.leakguard"]
