"""drgkit benchmarks (pytest-benchmark suite and the scaling script); see README.md.

A package only so that pytest imports ``benchmarks/conftest.py`` as ``benchmarks.conftest``
and it never shadows ``tests/conftest.py`` when both folders are collected in one run.
"""
