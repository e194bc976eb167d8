#!/usr/bin/python3
"""Lists what is over the size guide of shared/STYLE.md (issue 19, item 7): source
files over --file-lines lines (.py, .cc, .h, .c) and Python functions over
--function-lines lines (measured with ast, decorators excluded, nested functions
counted on their own too).

Usage: tools/check_sizes.py [--file-lines 500] [--function-lines 80] [--strict] [paths...]
(default paths: python tools tests fs meta store host plugins). Exit status 1 with
--strict when anything is listed. C++ functions are not measured here.
"""
import argparse
import ast
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SKIP = {"node_modules", "build", ".git", "__pycache__"}
SOURCES = (".py", ".cc", ".h", ".c")


def sources(paths):
    for top in paths:
        if os.path.isfile(top):
            yield top
            continue
        for d, dirs, files in os.walk(top):
            dirs[:] = sorted(x for x in dirs if x not in SKIP)
            for f in sorted(files):
                if f.endswith(SOURCES):
                    yield os.path.join(d, f)


def long_functions(path, limit):
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            n = node.end_lineno - node.lineno + 1
            if n > limit:
                yield node.lineno, node.name, n


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--file-lines", type=int, default=500)
    ap.add_argument("--function-lines", type=int, default=80)
    ap.add_argument("--strict", action="store_true", help="exit 1 if anything is listed")
    ap.add_argument("paths", nargs="*")
    args = ap.parse_args()
    paths = args.paths or [os.path.join(ROOT, p) for p in
                           ("python", "tools", "tests", "fs", "meta", "store", "host", "plugins")]
    found = 0
    for path in sources(p for p in paths if os.path.exists(p)):
        with open(path, errors="replace") as f:
            lines = sum(1 for _ in f)
        rel = os.path.relpath(path, ROOT)
        if lines > args.file_lines:
            print(f"file {rel}: {lines} lines")
            found += 1
        if path.endswith(".py"):
            for at, name, n in long_functions(path, args.function_lines):
                print(f"function {rel}:{at} {name}: {n} lines")
                found += 1
    return 1 if args.strict and found else 0


if __name__ == "__main__":
    sys.exit(main())
