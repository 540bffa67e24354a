"""Ingest: what the gateways send, stored once.

`bridge` is the MQTT side (subscriptions, decode, commands out, acks back; `actions` its table and command
publishing), `records` turns decoded messages into rows and writes a batch (`rows` the row shape, `bulk`
PostgreSQL's COPY, `states` gateway states and store marks, `alerts` what the ingest opens and resolves),
`writer` and `worker` the writer process, `health` what /healthz and /metrics say about it.
"""
