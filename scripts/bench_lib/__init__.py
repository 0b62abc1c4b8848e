"""The benchmark behind ``scripts/bench``: see :mod:`bench_lib.run`."""
