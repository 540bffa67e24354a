"""What the firmware build buys in heap: the whole firmware imported from .py, from .mpy, from the ROMFS image.

Run from the repository root: `.venv/bin/python bench/firmware_build_bench.py`. It builds the emulated
board's firmware (controller.firmware_build), then on the unix port, in one run each:
- heap the imported modules keep (gc.mem_free before and after importing every gw module);
- for each -X heapsize from --low to --high (step --step), whether the imports succeed at all:
  compiling source needs transient heap in one piece, so from .py success depends on fragmentation;
- the same from the ROMFS image mounted with vfs.VfsRom (bytecode stays in the image; on the unix
  port the image itself is read into the heap, on a board it stays in flash, so its size is shown apart).
The unix port is 64-bit: objects are about twice their ESP32 size. Last line: key=value.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from controller import firmware_build as fb  # noqa: E402
from emulator import micropython  # noqa: E402

SCRIPT = """
import sys, gc
if sys.argv[1] == "rom":
    import vfs
    with open(sys.argv[2], "rb") as f:
        vfs.mount(vfs.VfsRom(f.read()), "/rom")
    sys.path.insert(0, "/rom/lib")
gc.collect(); before = gc.mem_free()
import gw.app, gw.gsm, gw.fxo, gw.link, gw.hw_unix, gw.blockdev, gw.uart_unix
gc.collect(); print(before - gc.mem_free())
"""


def run(mode: str, heap: str, out: Path, script: Path) -> int | None:
    path = {"py": f"{REPO}:{REPO / 'firmware'}", "mpy": str(out / "fs" / "lib"), "rom": ""}[mode]
    env = dict(os.environ, MICROPYPATH=f"{path}:.frozen" if path else ".frozen")
    proc = subprocess.run([micropython.binary(), "-X", f"heapsize={heap}", str(script), mode,
                           str(out / fb.ROMFS_NAME)], env=env, capture_output=True, text=True, timeout=60, cwd=out)
    return int(proc.stdout.split()[-1]) if proc.returncode == 0 else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--low", type=int, default=180, help="smallest heap tried, KiB")
    ap.add_argument("--high", type=int, default=320, help="largest heap tried, KiB")
    ap.add_argument("--step", type=int, default=10, help="KiB")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        m = fb.build(out, profile="emulated")
        script = out / "imports.py"
        script.write_text(SCRIPT)
        compiled = [f for f in m["files"] if f["path"].endswith(".mpy")]
        py_bytes, mpy_bytes = sum(f["source_size"] for f in compiled), sum(f["size"] for f in compiled)
        print(f"{len(compiled)} modules: .py {py_bytes:,} bytes, .mpy {mpy_bytes:,} bytes, "
              f"ROMFS image {m['romfs']['size']:,} bytes")
        kept = {mode: run(mode, "4M", out, script) for mode in ("py", "mpy", "rom")}
        print("heap kept by the imported firmware (unix port): " + ", ".join(f"{k} {v:,}" for k, v in kept.items()))
        ok: dict[str, list[int]] = {"py": [], "mpy": [], "rom": []}
        for kib in range(args.low, args.high + 1, args.step):
            row = {mode: run(mode, f"{kib}K", out, script) is not None for mode in ok}
            for mode, good in row.items():
                if good:
                    ok[mode].append(kib)
            print(f"  -X heapsize={kib}K: " + "  ".join(f"{k} {'ok' if v else 'FAIL'}" for k, v in row.items()))
        lowest = {k: (min(v) if v else None) for k, v in ok.items()}
        steady = {k: next((h for h in range(args.low, args.high + 1, args.step)
                           if all(x in v for x in range(h, args.high + 1, args.step))), None) for k, v in ok.items()}
        print(f"py_bytes={py_bytes} mpy_bytes={mpy_bytes} romfs_bytes={m['romfs']['size']} "
              f"kept_py={kept['py']} kept_mpy={kept['mpy']} kept_rom={kept['rom']} "
              f"lowest_ok_py_k={lowest['py']} lowest_ok_mpy_k={lowest['mpy']} lowest_ok_rom_k={lowest['rom']} "
              f"always_ok_from_py_k={steady['py']} always_ok_from_mpy_k={steady['mpy']} "
              f"always_ok_from_rom_k={steady['rom']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
