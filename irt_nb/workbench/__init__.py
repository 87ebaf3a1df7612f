"The workbench: notebook checks, the refactoring assistant, golden tests and the `irt-nb` command line."


def __getattr__(name):
    # irt_nb 0.1's module `irt_nb.workbench` is now `irt_nb.workbench.checks`: its names still resolve, with a warning
    from irt_nb.workbench.moved import MOVED, _warn, moved_attribute

    if name.startswith("__"):
        raise AttributeError(name)
    value = moved_attribute("workbench", name)
    _warn("workbench", MOVED["workbench"])
    globals()[name] = value  # warn once per name
    return value
