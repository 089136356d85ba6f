"""Every lesson runs in quick mode (TINYGEN_QUICK=1) as a plain script, and writes the figures the
course commits for it (lessons/figures/NN_*.png, made by a full run)."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

LESSONS = Path(__file__).resolve().parent.parent / "lessons"
# Lessons are NN_name.py, and a lesson that continues lesson NN is NNb_name.py (08b follows 08).
SCRIPTS = sorted([*LESSONS.glob("[0-9][0-9]_*.py"), *LESSONS.glob("[0-9][0-9][a-z]_*.py")])
PNG = b"\x89PNG\r\n\x1a\n"


def lesson_label(script):
    """A lesson's label, 08 of 08_vae.py or 08b of 08b_gaussian_vae.py: its figures' prefix."""
    return script.name.split("_", 1)[0]


def committed_figures(script):
    return sorted(p.name for p in (LESSONS / "figures").glob(lesson_label(script) + "_*.png"))


def test_the_course_has_its_lessons_numbered_in_order():
    labels = [lesson_label(p) for p in SCRIPTS]
    expected = [f"{n:02d}" for n in range(9)] + ["08b"] + [f"{n:02d}" for n in range(9, 15)]
    assert labels == expected, [p.name for p in SCRIPTS]


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_a_lesson_is_percent_format_with_text_and_code_cells(script):
    text = script.read_text(encoding="utf-8")
    cells = re.split(r"^# %%", text, flags=re.MULTILINE)
    assert len(cells) > 4, "a lesson is a sequence of '# %%' cells"
    markdown = [c for c in cells[1:] if c.startswith(" [markdown]")]
    code = [c for c in cells[1:] if not c.startswith(" [markdown]")]
    assert len(markdown) >= 3 and len(code) >= 3
    for cell in markdown:  # a text cell holds only comment lines, or jupytext reads it as code
        lines = [line for line in cell.splitlines()[1:] if line.strip()]
        assert all(line.startswith("#") for line in lines), cell[:200]
    assert "Try this" in text or "try this" in text, "a lesson ends with exercises"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_a_lesson_runs_in_quick_mode_and_writes_its_figures(script, tmp_path):
    expected = committed_figures(script)
    assert expected, f"no figures committed for {script.name} in lessons/figures/"
    # One BLAS thread: a quick run's matrices are small, and on a busy machine OpenBLAS's spinning
    # threads made quick runs several times slower.
    env = dict(os.environ, TINYGEN_QUICK="1", TINYGEN_FIGURES=str(tmp_path), MPLBACKEND="Agg",
               OPENBLAS_NUM_THREADS="1")
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    written = sorted(p.name for p in tmp_path.glob("*.png"))
    assert written == expected
    assert all((tmp_path / name).read_bytes()[:8] == PNG for name in written)


def test_ctrl_c_ends_a_lesson_with_one_line_and_status_130(tmp_path):
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import course; "
            "print('started', flush=True); raise KeyboardInterrupt")
    env = dict(os.environ, TINYGEN_FIGURES=str(tmp_path))
    result = subprocess.run([sys.executable, "-c", code, str(LESSONS)], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 130
    assert result.stdout == "started\n"
    assert result.stderr.strip().splitlines() == [
        f"lesson interrupted (Ctrl-C): figures written so far are in {tmp_path}; "
        "run it again to start over"]
