"""The build's binaries the benchmarks run; bench_objects.py --build points them at
another build directory (set_build)."""
import os

import bench_zero_copy as bz

VINEYARDFS = os.path.join(bz.BUILD, "vineyardfs")
VYBENCH = os.path.join(bz.BUILD, "vybench")
VYFILL = os.path.join(bz.BUILD, "vyfill")


def set_build(build):
    global VINEYARDFS, VYBENCH, VYFILL
    VINEYARDFS, VYBENCH, VYFILL = (os.path.join(build, b)
                                   for b in ("vineyardfs", "vybench", "vyfill"))
