"""Helpers of the put tests: an object's meta.json tree, and its shape without the
fields that differ per object (ids, signatures, timestamps)."""
import json

PER_OBJECT = ("id", "signature", "__timestamp")


def shape(tree):
    if isinstance(tree, dict):
        return {k: shape(v) for k, v in tree.items() if k not in PER_OBJECT}
    return tree


def meta_tree(mount, object_id):
    with open("%s/objects/%s/meta.json" % (mount.path, object_id)) as f:
        return json.load(f)
