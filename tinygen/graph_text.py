"""A readable text dump of the graph behind a tensor: print(tinygen.graph(loss)).

    #1 Sum (), requires_grad
    └── #2 Mul (3,), requires_grad
        ├── #3 leaf 'x' (3,), requires_grad
        └── #4 leaf (3,)

Each line is an op (or a leaf) with its shape and whether it needs gradients. A tensor used twice
is drawn once; later uses point back to it as "(see #n)".
"""


class GraphText(str):
    """The dump as a string (printing it shows the tree)."""


def _describe(tensor):
    kind = f"leaf '{tensor.name}'" if tensor._ctx is None and tensor.name else (
        "leaf" if tensor._ctx is None else tensor._ctx.name
    )
    flags = [str(tensor.shape)]
    if tensor.dtype.name != "float32":
        flags.append(tensor.dtype.name)
    if tensor.requires_grad:
        flags.append("requires_grad")
    return f"{kind} " + ", ".join(flags)


def graph(tensor, max_depth=50):
    """The computation graph that produced `tensor`, as an indented tree (a str)."""
    lines = []
    numbers = {}

    def visit(t, prefix, branch, depth):
        label = _describe(t)
        if id(t) in numbers:
            lines.append(f"{prefix}{branch}{label} (see #{numbers[id(t)]})")
            return
        numbers[id(t)] = len(numbers) + 1
        lines.append(f"{prefix}{branch}#{numbers[id(t)]} {label}")
        if t._ctx is None:
            return
        if branch == "":
            child_prefix = ""  # the root's inputs start at the left margin
        else:
            child_prefix = prefix + ("    " if branch == "└── " else "│   ")
        if depth >= max_depth:
            lines.append(f"{child_prefix}└── ... (deeper than max_depth={max_depth})")
            return
        if t._ctx.released:
            lines.append(f"{child_prefix}└── ... (freed by backward; retain_graph=True keeps it)")
            return
        parents = t._ctx.inputs
        for i, parent in enumerate(parents):
            last = i == len(parents) - 1
            visit(parent, child_prefix, "└── " if last else "├── ", depth + 1)

    visit(tensor, "", "", 0)
    return GraphText("\n".join(lines))
