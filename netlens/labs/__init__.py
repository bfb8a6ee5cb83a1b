"""Labs: staged TCP lessons that run on the real stack and check what the kernel really did.

A lab is one module defining ``LAB = Lab(...)`` (see :mod:`netlens.labs.model`);
:func:`~netlens.labs.runner.run_lab` runs it in a private network namespace
with the real server, capture, sock_diag and kernel counters, and returns a
:class:`~netlens.labs.model.LabResult` whose checks say what happened.
"""
