"""The emulator's Modbus relay, driven as a bench's relay is: a pymodbus client writing coils over TCP."""

import threading

from pymodbus.client import ModbusTcpClient

from emulator.relay import ModbusRelay


def test_coil_writes_switch_the_load_and_read_back():
    switched, changed = [], threading.Event()

    def load(coil, on):
        switched.append((coil, on))
        changed.set()

    with ModbusRelay(on_switch=load, coils=4) as relay:
        client = ModbusTcpClient(relay.host, port=relay.port, timeout=5)
        assert client.connect()
        try:
            assert not client.write_coil(0, True, device_id=1).isError()
            assert changed.wait(10)
            assert client.read_coils(0, count=4, device_id=1).bits[:4] == [True, False, False, False]
            client.write_coil(0, True, device_id=1)  # already on: no second switch
            client.write_coils(0, [False, True], device_id=1)
            assert client.read_coils(0, count=4, device_id=1).bits[:4] == [False, True, False, False]
        finally:
            client.close()
    assert switched == [(0, True), (0, False), (1, True)]


def test_a_failing_load_does_not_stop_the_relay():
    def broken(coil, on):
        raise OSError("the board's supply is shorted")

    with ModbusRelay(on_switch=broken) as relay:
        client = ModbusTcpClient(relay.host, port=relay.port, timeout=5)
        assert client.connect()
        try:
            assert not client.write_coil(0, True, device_id=1).isError()
            assert client.read_coils(0, count=1, device_id=1).bits[0] is True
        finally:
            client.close()
