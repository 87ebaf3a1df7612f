"""irt_nb: item response theory from research notebooks to production.

Three parts: `irt_nb.science` (the method and the psychometrics), `irt_nb.serving` (stores, web API, registry,
monitoring) and `irt_nb.workbench` (notebook checks, refactoring assistant, command line).
"""

__version__ = "0.1.0"

from irt_nb.workbench.moved import install as _install_moved_paths

_install_moved_paths()  # the 0.1 flat paths (irt_nb.calculation, ...) keep working for one release, with a warning
