"""One module per ``netlens`` subcommand.

Each module defines ``HELP`` (one line), ``add_arguments(parser)`` and
``run(args) -> int``. Importing a command module must stay cheap: heavy
imports (textual, scapy, pyroute2) happen inside ``run`` so that ``netlens
--help`` and the headless commands start fast and load only what they use.
"""
