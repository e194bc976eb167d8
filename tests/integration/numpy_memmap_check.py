"""Checks a blob from Python: numpy.memmap of objects/<id>/data, read-only.

usage: numpy_memmap_check.py <data path> <count>
The blob holds `count` float64 values, value i = i * 0.5 - 3.25 (written by
python_test.cc). Exits 0 if the mapping shows exactly those values and the payload
cannot be opened for writing; prints what differs otherwise.
"""
import errno
import sys

import numpy


def main():
    path, count = sys.argv[1], int(sys.argv[2])
    arr = numpy.memmap(path, dtype=numpy.float64, mode="r")
    want = numpy.arange(count, dtype=numpy.float64) * 0.5 - 3.25
    if arr.shape != want.shape:
        print(f"shape {arr.shape}, want {want.shape}")
        return 1
    if not numpy.array_equal(arr, want):
        bad = numpy.nonzero(arr != want)[0]
        print(f"{len(bad)} values differ, first at {bad[0]}: {arr[bad[0]]} != {want[bad[0]]}")
        return 1
    try:
        numpy.memmap(path, dtype=numpy.float64, mode="r+")
    except OSError as e:
        if e.errno not in (errno.EPERM, errno.EACCES):
            print(f"mode r+ failed with {e!r}, want EPERM/EACCES")
            return 1
    else:
        print("mode r+ was allowed on a sealed payload")
        return 1
    print(f"ok {count}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
