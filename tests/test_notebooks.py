"""Every lesson opens as a notebook: jupytext turns the percent-format script into a valid .ipynb
whose cells are the script's `# %%` cells, and saving that notebook gives back the script."""
import re
from pathlib import Path

import pytest

jupytext = pytest.importorskip(
    "jupytext", reason="jupytext is not installed (pip install -e '.[test]' installs it)")
import nbformat  # noqa: E402  (a dependency of jupytext, so only importable after the skip)

LESSONS = Path(__file__).resolve().parent.parent / "lessons"
# NN_name.py, and NNb_name.py for a lesson that continues lesson NN (as test_lessons.py finds them).
SCRIPTS = sorted([*LESSONS.glob("[0-9][0-9]_*.py"), *LESSONS.glob("[0-9][0-9][a-z]_*.py")])


def uncomment(line):
    """Turn one line of a text cell into Markdown: '# text' gives 'text' and '#' an empty line."""
    assert line == "#" or line.startswith("# "), f"a text cell line is '#' or '# ...': {line!r}"
    return line[2:]


def script_cells(text):
    """Split a percent-format script on its `# %%` markers into (kind, source) pairs.

    A marker line `# %% [markdown]` opens a text cell, whose lines are comments; any other
    `# %%` line opens a code cell. The blank lines before the next marker separate the cells and
    belong to neither, so they are dropped, as jupytext drops them."""
    before_first, *chunks = re.split(r"^# %%", text, flags=re.MULTILINE)
    cells = [("code", before_first.rstrip("\n"))] if before_first.strip() else []
    for chunk in chunks:
        marker, _, body = chunk.partition("\n")
        lines = body.rstrip("\n").split("\n") if body.strip() else []
        if "[markdown]" in marker:
            cells.append(("markdown", "\n".join(uncomment(line) for line in lines)))
        else:
            cells.append(("code", "\n".join(lines)))
    return cells


def as_ipynb(script):
    """The .ipynb text jupytext makes of a lesson, read back as a notebook."""
    notebook = jupytext.read(script)
    return nbformat.reads(nbformat.writes(notebook), as_version=4)


def test_the_lessons_are_found():
    assert len(SCRIPTS) >= 13, [p.name for p in SCRIPTS]


def test_the_cell_splitter_reads_text_and_code_cells():
    text = "# %% [markdown]\n# # Title\n#\n# Some $x$.\n\n# %%\nx = 1\n\n\ndef f():\n    pass\n\n"
    assert script_cells(text) == [("markdown", "# Title\n\nSome $x$."),
                                  ("code", "x = 1\n\n\ndef f():\n    pass")]


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_a_lesson_converts_to_a_valid_notebook_with_the_scripts_cells(script):
    notebook = as_ipynb(script)
    nbformat.validate(notebook)  # raises nbformat.ValidationError on an invalid notebook
    expected = script_cells(script.read_text(encoding="utf-8"))
    found = [(cell.cell_type, cell.source) for cell in notebook.cells]
    assert [kind for kind, _ in found] == [kind for kind, _ in expected]
    for number, (cell, want) in enumerate(zip(found, expected)):
        assert cell == want, f"cell {number} of {script.name} differs"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_saving_a_lesson_as_a_notebook_leaves_the_script_unchanged(script):
    # What Jupyter does on save, with jupytext's contents manager: notebook -> percent script.
    # No metadata header is added, so opening a lesson in Jupyter and saving it changes nothing.
    text = script.read_text(encoding="utf-8")
    assert jupytext.writes(as_ipynb(script), fmt="py:percent") == text


# Lessons executed as notebooks, in quick mode, in a real IPython kernel: each figure a lesson
# saves must also appear under the cell that saved it (lessons/course.py shows it). 01 and 08
# are the ones first found without a single inline figure (08b holds what was 08's second half);
# 04 draws several in one cell.
EXECUTED = ["01_autoencoder", "04_sparse", "08_vae", "08b_gaussian_vae"]


@pytest.mark.parametrize("name", EXECUTED)
def test_a_lesson_run_as_a_notebook_shows_every_figure_it_saves(name, tmp_path, monkeypatch):
    nbclient = pytest.importorskip("nbclient", reason="pip install -e '.[test]' installs it")
    monkeypatch.setenv("TINYGEN_QUICK", "1")
    monkeypatch.setenv("TINYGEN_FIGURES", str(tmp_path / "figures"))
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")  # as tests/test_lessons.py runs lessons
    notebook = as_ipynb(LESSONS / f"{name}.py")
    client = nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(LESSONS)}})
    client.execute()  # the kernel inherits this environment
    saved = sorted((tmp_path / "figures").glob("*.png"))
    assert saved, f"{name} saved no figure in quick mode"
    shown = [output for cell in notebook.cells if cell.cell_type == "code"
             for output in cell.get("outputs", []) if "image/png" in output.get("data", {})]
    assert len(shown) == len(saved), (name, len(shown), [p.name for p in saved])
