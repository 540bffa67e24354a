"""`citygate flash`: a firmware build and a gateway's bundle onto a board, over its serial console.

What lands on the board's filesystem (its root on an ESP32; /flash, the REPL's working directory, on
the emulated board):

    main.py, lib/gw/*.mpy, lib/protocols/*.mpy   the build's fs/ (lib/ goes to the ROMFS partition with --romfs)
    config.json   the bundle's config: id, broker, user, profile, key, password (the store's device config)
    table.json    the bundle's sealed table in the store's own file format (firmware/gw/store.py writes it
                  here too), so the board routes calls before it ever reaches the broker
    fw.json       firmware version and build id: written last, removed first, so a flash cut short
                  leaves a board that `citygate check` reports as "build unknown"

Only files whose SHA-256 on the board differs are copied (hashed on the board, over the raw REPL); each
is written as name.tmp and renamed, then every file is hashed again. Refused before anything is written:
a bundle that does not verify, a board whose MicroPython loads another bytecode version, a build for
another platform, a board of another profile, a board configured for another gateway, too little flash.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Callable
from pathlib import Path

from controller.board_serial import Board, BoardError

PLATFORMS = {"esp32": "esp32", "unix": "linux"}  # build target -> sys.platform of the boards it runs on
FW_FILE = "fw.json"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load_bundle(path: Path, pubkey: str | None = None) -> dict:
    from controller import bundles

    try:
        return bundles.read(path, pubkey)
    except bundles.BundleError as e:
        if e.field == "file" and e.reason.startswith("cannot read"):
            raise BoardError("bundle", f"--bundle: {e.reason}") from None
        raise BoardError("bundle", f"corrupted or foreign bundle {path}: {e.field}: {e.reason} "
                         "(`citygate bundle verify` says the same; export it again)") from None


def load_build(build: Path) -> tuple[dict, dict[str, bytes]]:
    """The manifest and every board file of a `citygate firmware build` output, each checked against it."""
    try:
        manifest = json.loads((build / "manifest.json").read_text())
        root = build / manifest["root"]
        files = {f["path"]: (root / f["path"]).read_bytes() for f in manifest["files"]}
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise BoardError("bundle", f"--build {build}: no usable firmware build ({e}); make one with "
                         f"`citygate firmware build --profile PROFILE --out {build}`") from None
    for f in manifest["files"]:
        if sha256(files[f["path"]]) != f["sha256"]:
            raise BoardError("bundle", f"--build {build}: {f['path']} differs from its manifest: build again")
    return manifest, files


def table_file(doc: dict) -> bytes:
    """The bundle's sealed table as the store's table.json (header line + envelope), written by the store."""
    from firmware.gw.store import Store

    with tempfile.TemporaryDirectory() as d:
        Store(d).save_table(doc["table"].encode(), doc["table_version"])
        return (Path(d) / "table.json").read_bytes()


def check_board(info: dict, manifest: dict, doc: dict, reassign: bool) -> list[str]:
    """Refuse a board the build or the bundle does not fit; returns notes for the technician."""
    mpy = manifest["mpy"]
    ver, sub = info["mpy"] & 0xFF, (info["mpy"] >> 8) & 3
    if (ver, sub) != (mpy["version"], mpy["sub_version"]):
        raise BoardError("mismatch", f"the board's MicroPython ({info['version']}) loads bytecode mpy {ver}.{sub}; "
                         f"the build is mpy {mpy['version']}.{mpy['sub_version']}: install MicroPython 1.29 on "
                         "the board (esptool), or build with the mpy-cross of the board's version")
    want = PLATFORMS.get(manifest["target"])
    if want != info["platform"]:
        raise BoardError("mismatch", f"the build is for {manifest['target']} boards ({want}) but this board is "
                         f"{info['platform']} ({info['machine']}): `citygate firmware build --profile "
                         f"{doc['config']['profile'] if want == 'esp32' else 'emulated'}`")
    notes = []
    profile = doc["config"]["profile"]
    board = info.get("hardware_profile") or (info.get("config") or {}).get("profile")
    if board and board != profile:
        raise BoardError("mismatch", f"board profile {board} differs from the bundle's {profile}: this bundle is "
                         f"for another kind of board (its ports and pins); export the bundle of this board's "
                         "gateway, or change the gateway's profile at the controller")
    if not board:
        notes.append(f"the board does not say its profile (a blank ESP32): trusting the bundle's {profile}")
    had = (info.get("config") or {}).get("id")
    if had and had != doc["gateway"] and not reassign:
        raise BoardError("mismatch", f"bundle for another gateway: this board is {had}, the bundle is for "
                         f"{doc['gateway']}; give --reassign to make it {doc['gateway']} (its outbox is cleared)")
    return notes


def plan(manifest: dict, files: dict[str, bytes], doc: dict, romfs: bool) -> list[tuple[str, bytes]]:
    """(board path, contents) of every file to hold; fw.json last."""
    out = [(p, data) for p, data in files.items() if not (romfs and p.startswith("lib/"))]
    out.append(("config.json", json.dumps(doc["config"], sort_keys=True).encode()))
    if doc.get("table"):
        out.append(("table.json", table_file(doc)))
    fw = {"firmware_version": manifest["firmware_version"], "build_id": manifest["build_id"],
          "romfs": manifest["romfs"]["sha256"] if romfs and manifest.get("romfs") else None}
    out.append((FW_FILE, json.dumps(fw, sort_keys=True).encode()))
    return out


def _blocks(n: int, block: int) -> int:
    return -(-n // block) * block


def check_space(info: dict, wanted: list[tuple[str, bytes]], sizes: dict[str, int | None]) -> None:
    """Refuse before writing when the changed files (each written beside the old one, then renamed) do not fit."""
    if info.get("free") is None:
        return
    block = info["block"] or 4096
    grow = sum(_blocks(len(d), block) - _blocks(sizes.get(p) or 0, block) for p, d in wanted)
    peak = max((_blocks(sizes.get(p) or 0, block) for p, _ in wanted), default=0)
    need = grow + peak + 2 * block  # + the transient old copy, + directory blocks
    if need > info["free"]:
        raise BoardError("space", f"board flash full: these files need about {need // 1024} KiB, the board has "
                         f"{info['free'] // 1024} KiB free of {(info['size'] or 0) // 1024} KiB; use --romfs "
                         "on a board with a ROMFS partition, or erase the board's files (mpremote rm -r :lib)")


def flash(board: Board, build: Path, manifest: dict, files: dict[str, bytes], doc: dict, *, romfs: bool = False,
          reassign: bool = False, step: Callable[[str, int, int], None] | None = None,
          note: Callable[[str], None] = print) -> dict:
    """Flash and reset; returns what was done. `step(what, done, total)` reports progress in bytes."""
    step = step or (lambda what, done, total: None)
    board.enter(soft_reset=True)
    info = board.probe()
    for n in check_board(info, manifest, doc, reassign):
        note(n)
    if romfs and not info.get("romfs"):
        raise BoardError("mismatch", "this board has no ROMFS partition (its MicroPython has no vfs.rom_ioctl "
                         "or no partition): flash without --romfs (the .mpy files go on its filesystem)")
    wanted = plan(manifest, files, doc, romfs)
    paths = [p for p, _ in wanted]
    before = board.hashes(paths)
    changed = [(p, d) for p, d in wanted if before[p] != sha256(d)]
    if changed and changed[-1][0] != FW_FILE:  # it is removed while the others are copied: written again last
        changed.append(wanted[-1])
    if (info.get("config") or {}).get("id") not in (None, doc["gateway"]):
        board.run("import os\ntry:\n for n in os.listdir('store'):\n  os.remove('store/' + n)\nexcept OSError:\n pass")
        note(f"board reassigned from {info['config']['id']} to {doc['gateway']}: its outbox was cleared")
    if romfs:
        _deploy_romfs(board, manifest, build / manifest["romfs"]["file"], note)
    if changed:
        sizes = board.json("import os, json\ndef _s(p):\n try:\n  return os.stat(p)[6]\n except OSError:\n  "
                           "return None\nprint(json.dumps([_s(p) for p in %s]))" % json.dumps([p for p, _ in changed]))
        check_space(info, changed, dict(zip([p for p, _ in changed], sizes, strict=True)))
        board.remove(FW_FILE)  # from here until fw.json is written again, the board holds no complete build
        board.makedirs(_parents(changed))
        total, done = sum(len(d) for _, d in changed), 0
        for p, d in sorted(changed, key=lambda pd: pd[0] == FW_FILE):
            board.feed()
            board.write(p, d, lambda n, base=done, p=p: step(p, base + n, total))
            done += len(d)
    after = board.hashes(paths)
    bad = [p for p, d in wanted if after[p] != sha256(d)]
    if bad:
        raise BoardError("failed", f"verification failed after copying: {', '.join(bad)} differ on the board; "
                         "flash again (a failing flash chip or a cable dropping bytes)")
    banner = board.restart()
    return {"port": board.port, "gateway": doc["gateway"], "profile": doc["config"]["profile"],
            "build_id": manifest["build_id"], "firmware_version": manifest["firmware_version"],
            "table_version": doc.get("table_version"), "files": len(wanted), "copied": [p for p, _ in changed],
            "verified": len(wanted), "romfs": romfs, "board": {k: info.get(k) for k in ("platform", "version", "mpy")},
            "banner": banner}


def _parents(changed: list[tuple[str, bytes]]) -> list[str]:
    """Every directory the changed files need, parents first."""
    dirs = set()
    for p, _ in changed:
        parts = p.split("/")[:-1]
        dirs.update("/".join(parts[:i]) for i in range(1, len(parts) + 1))
    return sorted(dirs, key=lambda d: (d.count("/"), d))


def _deploy_romfs(board: Board, manifest: dict, image: Path, note: Callable[[str], None]) -> None:
    """mpremote's own `romfs deploy` onto partition 0, skipped when the board's image is this one."""
    from argparse import Namespace

    from mpremote.commands import CommandError, _do_romfs_deploy

    class State:
        transport = board.t

        def ensure_raw_repl(self):
            pass

        def did_action(self):
            pass

    try:
        _do_romfs_deploy(State(), Namespace(path=str(image), partition=0, mpy=False))
    except (CommandError, SystemExit) as e:
        raise BoardError("space", f"romfs deploy of {image} failed: {e}") from None
    note(f"ROMFS image {manifest['romfs']['sha256'][:12]} deployed to partition 0")
