"""`tinygen info`: the version, the devices and backends that run here, and where MNIST is."""
import numpy as np

from .. import __version__, backend, devices
from ..data.mnist import cache_dir, find_mnist


def run(args):
    print(f"tinygen {__version__}, numpy {np.__version__}")
    print("devices (tinygen train/sample/score --device):")
    for name in devices.DEVICE_TYPES:
        why_not = devices.why_unavailable(name)
        print(f"  {name:6s} " + ("available" if not why_not else f"not available: {why_not}"))
    print(f"backend in use on the cpu: {backend.current()}")
    for entry in backend.status():
        if not entry.available:
            print(f"  {entry.name:6s} ({entry.device}) not available: {entry.why_not}")
        elif entry.simulated:
            print(f"  {entry.name:6s} ({entry.device}) available, in a simulator (slow)")
        else:
            print(f"  {entry.name:6s} ({entry.device}) available")
    for split in ("train", "test"):
        folder = find_mnist(split)
        where = f"found in {folder}" if folder else "not found: it will be downloaded on first use"
        print(f"MNIST {split}: {where} (search order: TINYGEN_DATA, then {cache_dir()})")
