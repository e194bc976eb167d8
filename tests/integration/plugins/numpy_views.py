"""The numpy plugin through a real mount: every dtype, both orders, both ways.

usage: numpy_views.py <mountpoint> <scratch dir>

For each array: np.save() it into new/ (the builder makes a Tensor), check that the
Tensor's buffer_ data holds the array's bytes in its own order, that
numpy.load(views/tensor.npy, mmap_mode='r') equals the array with the same dtype,
shape and order, and that a cp of a .npy from elsewhere gives the same. Then
NumericArray and Array objects written as meta.json resolve to array.npy. Prints one
line per check and exits 1 on the first mismatch.
"""
import json
import os
import shutil
import sys

import numpy as np

mnt, scratch = sys.argv[1], sys.argv[2]


def obj(link):
    return os.readlink(link).rsplit("/", 1)[1]


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        sys.exit(1)


DTYPES = ["bool", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64",
          "float16", "float32", "float64", "complex64", "complex128", "<U5", "S4"]
VINEYARD = {"int32": "int", "float32": "float", "float64": "double"}

rng = np.random.default_rng(7)
for n, dt in enumerate(DTYPES):
    base = (rng.random((3, 4, 5)) * 100).astype(dt) if dt[0] not in "<S" else \
        np.array([[str(i * j) for j in range(4)] for i in range(3)], dtype=dt)
    for order in "CF":
        a = np.asarray(base, order=order)
        name = "a%d%s.npy" % (n, order)
        if n % 2:
            np.save(os.path.join(mnt, "new", name), a)  # written in place
        else:
            np.save(os.path.join(scratch, name), a)     # copied in with cp
            shutil.copyfile(os.path.join(scratch, name), os.path.join(mnt, "new", name))
        tid = obj(os.path.join(mnt, "new", name))
        meta = json.load(open(os.path.join(mnt, "objects", tid, "meta.json")))
        want = "vineyard::Tensor<%s>" % VINEYARD.get(a.dtype.name, a.dtype.name)
        check(meta["typename"] == want, "%s %s typename %s" % (dt, order, meta["typename"]))
        check(json.loads(meta["shape_"]) == list(a.shape), "%s %s shape_" % (dt, order))
        check(json.loads(meta["order_"]) == order if a.ndim > 1 else True, "%s %s order_" % (dt, order))
        data = open(os.path.join(mnt, "objects", tid, "members", "buffer_", "data"), "rb").read()
        check(data == a.tobytes(order="A"), "%s %s buffer_ holds the array bytes" % (dt, order))
        view = os.path.join(mnt, "objects", tid, "views", "tensor.npy")
        b = np.load(view, mmap_mode="r")
        check(isinstance(b, np.memmap), "%s %s view maps" % (dt, order))
        check(b.dtype == a.dtype and b.shape == a.shape and np.array_equal(a, b),
              "%s %s numpy.load(view) equals the array" % (dt, order))
        check(b.flags["F_CONTIGUOUS"] == (order == "F"), "%s %s view keeps the order" % (dt, order))
        check(os.stat(view).st_size == len(open(view, "rb").read()), "%s %s view size exact" % (dt, order))

# NumericArray and Array written as metadata: 1-D views of their buffer_.
vals = np.arange(10, dtype=np.int64)
with open(os.path.join(mnt, "new", "vals"), "wb") as f:
    f.write(vals.tobytes())
blob = obj(os.path.join(mnt, "new", "vals"))
for typename, fields, want in [
        ("vineyard::NumericArray<int64>", {"length_": 4, "offset_": 3, "null_count_": 0}, vals[3:7]),
        ("vineyard::Array<int64>", {"size_": 10}, vals)]:
    meta = dict(fields, typename=typename, buffer_={"id": blob})
    name = typename.split("::")[1].split("<")[0] + ".meta.json"
    with open(os.path.join(mnt, "new", name), "w") as f:
        json.dump(meta, f)
    oid = obj(os.path.join(mnt, "new", name))
    got = np.load(os.path.join(mnt, "objects", oid, "views", "array.npy"), mmap_mode="r")
    check(np.array_equal(got, want) and got.dtype == np.int64, "%s -> array.npy" % typename)
print("all numpy checks passed")
