"""Rigs: a real bench or an emulated board behind one interface (hil_tests.rig.base).

    cfg = config.load("hil_tests/rigs/emulated.toml")
    with make_rig(cfg, log_dir) as rig:      # EmulatedRig or BenchRig, as the rig file's `kind` says
        rig.power.on(); rig.console.expect("link: connected", 30); rig.network.call("gsm1", "+38050...")
"""

from __future__ import annotations

from pathlib import Path


def make_rig(cfg, log_dir: str | Path):
    """The rig a parsed rig file describes, not yet opened."""
    if cfg.kind == "emulated":
        from hil_tests.rig.emulated_rig import EmulatedRig

        return EmulatedRig(cfg, log_dir)
    if cfg.kind == "box":
        from hil_tests.rig.box import BoxRig

        return BoxRig(cfg, log_dir)
    from hil_tests.rig.bench import BenchRig

    return BenchRig(cfg, log_dir)
