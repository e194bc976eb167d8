"""put() of a composite value as one upload: new/<x>.batch (README "Many objects in
one upload"), created all or nothing by the daemon.

While put() runs the builtin builders, Client._put_bytes and create_metadata do
not write files: they record an entry and hand out a stand-in id (an ObjectID of
this instance whose counter is at or above _STANDIN_BASE, which the store never
reaches), which the enclosing builders embed as members like any id. At the end
the entries are written as one manifest, with each stand-in turned into "#<entry>",
plus the payload bytes of the blobs, and the seal makes every object at once.

What is not batched, and so keeps the per-object path:
  * a builder that is not this package's own (a user's builder may look ids up):
    it and everything it builds run per object; its result enters the batch as an
    existing id;
  * blobs over INLINE_MAX bytes: uploaded first as their own new/<x>.blob (no copy
    through the batch file) and referenced by id; removed again (best effort) if
    the batch fails;
  * a value that makes a single object (put(b"..."), put(1)): one plain upload.
"""

import gc
import json
import os
import threading

from .errors import InvalidMetadata
from .objects import _STORE_FIELDS, ObjectID, ObjectMeta

INLINE_MAX = 1 << 20  # blobs larger than this are uploaded on their own first
_STANDIN_BASE = 0xFFFF00000000  # counters of stand-in ids (48-bit counter space)
_BLOB_BIT = 1 << 63

_local = threading.local()
_SKIP = frozenset(_STORE_FIELDS)


def current(client):
    """The batch being recorded for `client` on this thread, or None."""
    batch = getattr(_local, "batch", None)
    return batch if batch is not None and batch.client is client else None


class suspended:
    """``with suspended():`` runs a builder that is not ours per object."""

    def __enter__(self):
        self.saved = getattr(_local, "batch", None)
        _local.batch = None

    def __exit__(self, *exc):
        _local.batch = self.saved


def is_ours(builder):
    """Whether `builder` is one of this package's, which only record ids."""
    return getattr(builder, "__module__", "").startswith("vineyardfs.")


class Batch:
    """The entries recorded for one put()."""

    def __init__(self, client):
        self.client = client
        self.entries = []  # ("blob", memoryview) or ("meta", create-form dict)
        self.refs = []  # per entry: the indices of the entries it references
        self.index = {}  # stand-in raw id -> entry index
        self.uploaded = []  # ids of large blobs uploaded on their own
        self.payload_size = 0
        self.texts = {}  # entry index -> its manifest text, encoded when recorded
        self.runs = {}  # first entry -> (end, text, arrays, bytes) of an add_tensors run
        self._stem = (client._instance_id & 0x7FFF) << 48 | _STANDIN_BASE

    def __enter__(self):
        if getattr(_local, "batch", None) is not None:
            raise RuntimeError("a put() inside a put() of the same thread")
        _local.batch = self
        # The cyclic GC paused for the put: its ~4 container objects per recorded
        # object all live until it returns (then freed by reference counting, never
        # promoted), but collections during it promote them, and every few puts of
        # 1,000 arrays that triggered a full collection of the whole heap (20-30 ms
        # with pandas loaded, against ~4 ms of put). Re-enabled only if it was on.
        self._gc = gc.isenabled()
        gc.disable()
        return self

    def __exit__(self, exc_type, exc, tb):
        _local.batch = None
        if self._gc:
            gc.enable()
        if exc_type is not None:
            self._drop_uploaded()

    def _standin(self, blob):
        n = len(self.entries)
        raw = (_BLOB_BIT if blob else 0) | self._stem | n
        self.index[raw] = n
        return ObjectID(raw)

    def add_blob(self, view):
        """Records a blob of `view` (1-D bytes); returns its stand-in id."""
        standin = self._standin(True)
        self.entries.append(("blob", view))
        self.refs.append(())
        self.payload_size += view.nbytes
        return standin

    def add_tensor(self, view, form):
        """Records the blob of `view` (1-D bytes, at most INLINE_MAX) and the Tensor
        `form` (its create form without buffer_, which becomes that blob): what
        _put_bytes and create_metadata would record for tensor_builder, without an
        ObjectMeta. Returns the Tensor's stand-in id."""
        k = len(self.entries)
        self.index[_BLOB_BIT | self._stem | k] = k
        self.entries.append(("blob", view))
        self.refs.append(())
        self.payload_size += view.nbytes
        form["buffer_"] = {"id": "#%d" % k}
        standin = self._add_form(form, [k])
        self.texts[k + 1] = _tensor_text(form, k)
        return standin

    def add_tensors(self, arrays, form):
        """Records, for each of `arrays` (plain C-contiguous ndarrays of the dtype and
        shape of the Tensor `form`, each 1 to INLINE_MAX bytes), its blob and its
        Tensor: the entries add_tensor records, in the same order, in one call (the
        blob's value is the array itself), and their manifest text as one run for
        _write. Returns the Tensors' stand-in ids."""
        head, tail = _tensor_parts(form)
        entries, refs, index = self.entries, self.refs, self.index
        start = k = len(entries)
        stem, blob_stem = self._stem, _BLOB_BIT | self._stem
        size = form["nbytes"]
        offset = self.payload_size
        new, ids, texts = object.__new__, [], []
        for a in arrays:
            entries.append(("blob", a))
            tensor = form.copy()
            tensor["buffer_"] = {"id": "#%d" % k}
            entries.append(("meta", tensor))
            refs.append(())
            refs.append((k,))
            index[blob_stem | k] = k
            index[stem | (k + 1)] = k + 1
            texts.append('{"blob":[%d,%d]},%s%d%s' % (offset, size, head, k, tail))
            standin = new(ObjectID)
            standin._value = stem | (k + 1)
            ids.append(standin)
            offset += size
            k += 2
        self.runs[start] = (k, ",".join(texts), arrays, offset - self.payload_size)
        self.payload_size = offset
        return ids

    def add_meta(self, form):
        """Records a metadata object (its create form); returns its stand-in id."""
        refs = []
        for key, value in form.items():
            if isinstance(value, dict) and "id" in value:
                form[key] = self._member(key, value, refs)
        return self._add_form(form, refs)

    def add_fields(self, fields):
        """Records the metadata object of an ObjectMeta's fields (what its
        _create_form() would give, built in one pass); returns its stand-in id."""
        form, refs, index = {}, [], self.index
        for key, value in fields.items():
            if key in _SKIP:
                continue
            t = type(value)
            if t is str or t is int:  # the common plain fields (a DataFrame's labels)
                form[key] = value
            elif t is ObjectID:  # the common member: no text round trip
                k = index.get(value._value)
                if k is None:
                    form[key] = {"id": str(value)}
                else:
                    form[key] = {"id": "#%d" % k}
                    refs.append(k)
            elif isinstance(value, (ObjectID, ObjectMeta)):
                form[key] = self._member(key, {"id": str(value if isinstance(value, ObjectID)
                                                           else value.id)}, refs)
            elif isinstance(value, dict) and "id" in value:
                form[key] = self._member(key, value, refs)
            else:
                form[key] = value
        return self._add_form(form, refs)

    def _member(self, key, value, refs):
        if isinstance(value["id"], str) and value["id"].startswith("#"):
            raise InvalidMetadata("member %r: %r is not an object id" % (key, value["id"]))
        k = self._ref(value["id"])
        if k is None:
            return value
        refs.append(k)
        return {"id": "#%d" % k}

    def _add_form(self, form, refs):
        standin = self._standin(False)
        self.entries.append(("meta", form))
        self.refs.append(refs)
        return standin

    def _ref(self, text):
        try:
            return self.index.get(int(ObjectID(text)))
        except (TypeError, ValueError):
            return None

    def commit(self, result):
        """Creates the recorded objects; returns the real id of `result`."""
        root = self._ref(str(result))
        if root is None:  # the value was an existing object: nothing recorded is needed
            return result
        try:
            if len(self.entries) == 1:
                return self._single(self.entries[0])
            if not self._all_reached(root):  # the daemon would refuse it: per object
                return self._per_object(root)
            return self._write(root)
        except BaseException:
            self._drop_uploaded()
            raise

    def _all_reached(self, root):
        # References only go back: one sweep from the root down marks what it reaches.
        seen = bytearray(len(self.entries))
        seen[root] = 1
        for i in range(root, -1, -1):
            if seen[i]:
                for j in self.refs[i]:
                    seen[j] = 1
        return seen.count(0) == 0

    def _per_object(self, root):
        real = []
        for kind, value in self.entries:
            if kind == "meta":
                value = {k: v if _ref_index(v) is None else {"id": str(real[_ref_index(v)])}
                         for k, v in value.items()}
            real.append(self._single((kind, value)))
        return real[root]

    def _single(self, entry):
        kind, value = entry
        if kind == "blob":
            return self.client._create_file(".blob", value, "put blob of %d bytes" % value.nbytes)
        try:
            text = json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise InvalidMetadata("the metadata is not JSON: %s" % e) from None
        return self.client._create_file(".meta.json", text.encode(),
                                        "create %s" % value.get("typename"))

    def _write(self, root):
        # The manifest in one json.dumps (or, when Tensors were recorded with their
        # text, joined from the entries' texts); the payload is the blobs' own buffers,
        # handed to _create_file as a list that it writes with writev (no join, no copy).
        manifest, pieces, offset, texts = [], [None], 0, self.texts
        entries, runs = self.entries, self.runs
        textual = bool(texts or runs)
        i, n = 0, len(entries)
        while i < n:
            run = runs.get(i)
            if run is not None:  # an add_tensors run: its text and arrays as they are
                i, text, arrays, size = run
                manifest.append(text)
                pieces.extend(arrays)
                offset += size
                continue
            kind, value = entries[i]
            if kind == "blob":
                size = value.nbytes
                manifest.append('{"blob":[%d,%d]}' % (offset, size) if textual
                                else {"blob": [offset, size]})
                if size:
                    pieces.append(value)
                    offset += size
            else:
                manifest.append(texts.get(i) or {"meta": value})
            i += 1
        try:
            if textual:
                head = '{"entries":[%s],"root":%d}' % (
                    ",".join([m if type(m) is str else _dumps(m) for m in manifest]), root)
            else:
                head = _dumps({"entries": manifest, "root": root})
        except (TypeError, ValueError) as e:
            raise InvalidMetadata("the metadata is not JSON: %s" % e) from None
        pieces[0] = head.encode() + b"\0"
        return self.client._create_file(".batch", pieces, "put of %d objects" % len(self.entries))

    def _drop_uploaded(self):
        for blob in self.uploaded:
            try:
                os.rmdir(self.client._object_path(blob))
            except OSError:
                pass
        self.uploaded = []


_dumps = json.JSONEncoder(allow_nan=False, separators=(",", ":")).encode


_TENSOR_TEXTS = {}  # a Tensor form's fields -> its entry text around the buffer's index


def _tensor_parts(fields):
    """The manifest text of a Tensor entry whose create form is `fields` (without
    buffer_) and buffer_, as the two pieces around the buffer's entry index: what
    _dumps({"meta": form}) gives, from a template per distinct set of fields (a list
    of same-shaped arrays encodes its Tensors once)."""
    return _parts_of(tuple(fields.items()))


def _parts_of(key):
    parts = _TENSOR_TEXTS.get(key)
    if parts is None:
        text = _dumps({"meta": dict(key, buffer_={"id": "#@"})})
        parts = tuple(text.rsplit("@", 1))
        if len(_TENSOR_TEXTS) >= 256:
            _TENSOR_TEXTS.clear()
        _TENSOR_TEXTS[key] = parts
    return parts


def _tensor_text(form, k):
    """The manifest text of the Tensor entry `form` (buffer_ is entry k, its last field)."""
    head, tail = _parts_of(tuple(form.items())[:-1])
    return "%s%d%s" % (head, k, tail)


def _ref_index(value):
    """k for a member {"id": "#k"} of a recorded create form, else None."""
    if isinstance(value, dict) and isinstance(value.get("id"), str) and value["id"][:1] == "#":
        return int(value["id"][1:])
    return None
