"""Exact-text edits of a source file for the bench-variant builders (build-bench-*.sh): each (old, new) pair must
occur exactly once, else the builder stops with its name and the text it no longer finds, before anything is
written."""
import sys


def apply(path, edits, who):
    s = open(path).read()
    for old, new in edits:
        if s.count(old) != 1:
            sys.exit(f"{who}: {path} no longer holds what it edits: {old.strip()[:70]}")
        s = s.replace(old, new)
    open(path, 'w').write(s)
