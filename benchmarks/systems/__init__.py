"""One module per benchmarked system, each exposing ``RUNNERS``: workload key -> runner.

A runner takes a :class:`~benchmarks.child.Cell` and returns an
:class:`~benchmarks.child.Outcome`; it runs inside a fresh child process. The key
``"prepare"`` writes the W1 file that W5 and W6 start from.
"""
