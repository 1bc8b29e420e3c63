"""Benchmarks of pytraj against the raw-PyTables floor, pypet 0.6.1 and psweep.

``python -m benchmarks`` runs the workloads of DESIGN §7 for pytraj and the floor;
``python -m benchmarks.compare`` adds pypet and psweep from their own virtual
environment; ``python -m benchmarks --smoke`` is the tiny run the test suite calls.

The package imports only the standard library at the top level, so the child
processes of other virtual environments (pypet needs numpy < 2) can import it too.
"""
