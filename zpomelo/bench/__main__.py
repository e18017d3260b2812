"""``python -m zpomelo.bench ...``: the same as ``zpomelo bench ...``."""
from zpomelo.bench.cli import main

main()
