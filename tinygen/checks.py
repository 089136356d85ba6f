"""Checks of arguments shared across the package, each with one wording of its error."""


def one_of(value, choices, name, owner=""):
    """value, if it is one of choices; else ValueError "<owner>: <name> must be one of a, b; got x"
    (owner, the class or function that took the argument, may be left out)."""
    if value not in choices:
        where = f"{owner}: " if owner else ""
        raise ValueError(f"{where}{name} must be one of {', '.join(str(c) for c in choices)}; "
                         f"got {value!r}")
    return value
