"""Real MQTT brokers on loopback for tests, demos and rigs: Mosquitto and the embedded amqtt, plus the
broker's access rules (`access`) and the files an installed Mosquitto reads (`files`).

Both broker classes share one interface:

    with Mosquitto() as b:          # or AmqttBroker()
        b.host, b.port, b.url       # "127.0.0.1", 40123, "mqtt://127.0.0.1:40123"
        b.stop(); b.start()         # an outage: same port, the broker forgets in-memory state
        b.pause(); b.resume()       # a silent outage: connections stay open but nothing answers
"""

from controller.brokers.amqtt import AmqttAcl, AmqttAuth, AmqttBroker
from controller.brokers.base import HOST, _Broker, free_port, wait_port
from controller.brokers.mosquitto import Mosquitto, mosquitto_binary, mosquitto_password_line

__all__ = ["HOST", "AmqttAcl", "AmqttAuth", "AmqttBroker", "Mosquitto", "_Broker", "free_port",
           "mosquitto_binary", "mosquitto_password_line", "wait_port"]
