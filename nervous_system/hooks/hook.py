"""The file agents run for each hook: ``<python> -S -I <this file> AGENT --db ...``.

Three lines on purpose: a script given on the command line is compiled on every run,
an imported module is loaded from its cached bytecode. ``-I`` leaves the script's
directory off ``sys.path``; this puts it back so ``client`` (stdlib-only) imports.
"""
import sys

sys.path.insert(0, __file__.rpartition("/")[0] or ".")
import client  # noqa: E402

client.main()
