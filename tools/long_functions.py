#!/usr/bin/env python3
"""Lists the C++ functions longer than LIMIT lines (STYLE.md: about 80 at most).

Usage: tools/long_functions.py LIMIT FILE...
Counts braces outside comments and string literals: a brace opened at namespace or class
level that is not a namespace, class, struct, enum or union starts a function (or an
initializer at file level, which is reported the same way); its closing brace ends it.
Prints "file:line: N lines: <first line>" for each; exits 1 if any was found.
"""
import re
import sys


def scan(path, limit):
    lines = open(path, encoding="utf-8").read().split("\n")
    depth, stack, ns_depths = 0, [], set()
    start = start_depth = None
    found = []
    for i, line in enumerate(lines):
        code = re.sub(r'"(\\.|[^"\\])*"', '""', line)
        code = re.sub(r"'(\\.|[^'\\])*'", "''", code)
        code = re.sub(r"//.*", "", code)
        for ch in code:
            if ch == "{":
                top = depth == 0 or depth in ns_depths or (stack and stack[-1] == "class")
                head = code.split("{")[0]
                if start is None and top:
                    if re.search(r"\bnamespace\b", head) or re.match(r"^\s*namespace", code):
                        ns_depths.add(depth + 1)
                        stack.append("ns")
                    elif re.search(r"\b(class|struct|enum|union)\b", head) and ")" not in head:
                        stack.append("class")
                    else:
                        start, start_depth = i, depth
                        stack.append("fn")
                else:
                    stack.append("block")
                depth += 1
            elif ch == "}":
                depth -= 1
                if stack and stack.pop() == "ns":
                    ns_depths.discard(depth + 1)
                if start is not None and depth == start_depth:
                    n = i - start + 1
                    if n > limit:
                        j = start
                        while j > 0 and "(" not in lines[j]:
                            j -= 1
                        found.append(f"{path}:{j + 1}: {n} lines: {lines[j].strip()[:80]}")
                    start = None
    return found


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    limit = int(sys.argv[1])
    found = [f for path in sys.argv[2:] for f in scan(path, limit)]
    if found:
        print("\n".join(found))
    sys.exit(1 if found else 0)


if __name__ == "__main__":
    main()
