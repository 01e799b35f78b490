"""Functional tests' driver. It runs inside the sandbox and is never imported by Lachesis.

It reads {"fn_name", "args"} as JSON from stdin, runs the solution at /code/main.py as a module (so an
`if __name__ == "__main__":` block does not run), calls `Solution().<fn_name>` if the solution defines a
class `Solution` with that method (LeetCode style), else the top-level function `<fn_name>`, and writes the
JSON of the return value to stdout. The solution's own prints go to stderr, so they cannot pass for the
result. Like LiveCodeBench, the solution sees `typing` and the usual standard-library helpers already
imported (starter code's `List[int]` annotations then just work).
"""

import json
import os
import sys

PRELUDE = """\
from typing import *
import bisect, collections, functools, heapq, itertools, math, re, string
from collections import Counter, defaultdict, deque
from functools import cache, lru_cache, reduce
from heapq import heapify, heappop, heappush
from itertools import accumulate, combinations, permutations, product
from math import ceil, comb, floor, gcd, inf, isqrt, sqrt
"""


def plain(value):
    """JSON for what json cannot encode itself: sets as sorted lists, anything else as its repr."""
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    return repr(value)


def main():
    call = json.loads(sys.stdin.read())
    result = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    namespace = {"__name__": "solution"}
    exec(PRELUDE, namespace)
    with open("/code/main.py") as f:
        exec(compile(f.read(), "/code/main.py", "exec"), namespace)
    name = call["fn_name"]
    cls = namespace.get("Solution")
    if isinstance(cls, type) and callable(getattr(cls, name, None)):
        fn = getattr(cls(), name)
    elif callable(namespace.get(name)):
        fn = namespace[name]
    else:
        sys.exit(f"harness: the program defines neither a function {name!r} nor a class Solution with that method")
    value = fn(*call["args"])
    result.write(json.dumps(value, default=plain))
    result.close()


if __name__ == "__main__":
    main()
