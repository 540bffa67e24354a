"""A gateway's signed bundle made at the controller: the one code behind `citygate bundle export` (offline file)
and `POST /api/v1/gateways/{id}/bundle-file` (what `citygate flash --gateway` fetches with a technician's token).

Both rotate the gateway's key and MQTT password (audited; the board's old ones stop working) and seal the
gateway's current table (its desired version, else the latest compiled) with the new key.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session


def signed_bundle(s: Session, gateway_id: str, settings, *, actor: str, broker: str | None = None,
                  bridge=None) -> dict:
    """The bundle document (controller.bundles.make) for `gateway_id`; raises services.errors NotFound / FieldError."""
    from controller import bundles
    from controller.compiler import latest_table
    from controller.models import TableVersion
    from controller.services.gateways import bundle_config, load, rotate

    gw = load(s, gateway_id)
    config = bundle_config(gw, settings, bridge, broker)  # refuses an unknowable broker before rotating
    version = gw.desired_version
    tv = (s.scalars(select(TableVersion).where(TableVersion.gateway_id == gw.id,
                                               TableVersion.version == version)).first()
          if version else latest_table(s, gw.id))
    made = rotate(s, gw, settings.secret_key, actor=actor, action="bundle")
    return bundles.make(config | {"key": made.key, "password": made.password},
                        tv.body.encode() if tv else None, settings.secret_key)
