"""Test rigs that used to ship inside the package: frame synthesis and a classic-BPF interpreter.

Importable as ``support`` from any test (``tests/`` is on ``sys.path``: pytest puts
the directory of ``tests/conftest.py`` there; benchmarks and subprocess snippets
insert it themselves).
"""
