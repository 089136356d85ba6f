"""Install tinygen: pip install -e ".[test]" (add ",cuda" for numba-cuda on a GPU machine, and
",lessons" for JupyterLab with jupytext, which opens the lessons as notebooks)."""
from setuptools import find_packages, setup

setup(
    name="tinygen",
    version="0.1.0",
    description="Generative deep learning from scratch in NumPy: autograd, autoencoders, GANs",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["tinygen", "tinygen.*"]),
    package_data={"tinygen.data": ["mnist_subset.npz"],  # the bundled MNIST subset (~2 MB)
                  "tinygen": ["mnist_classifier.npz"]},  # FID classifier weights (~540 kB)
    python_requires=">=3.10",
    install_requires=["numpy", "numba", "matplotlib", "tqdm"],
    entry_points={"console_scripts": ["tinygen = tinygen.cli:main"]},
    extras_require={
        # ruff: the lint of .ci/run (ruff.toml); jupytext: tests/test_notebooks.py
        # nbclient + ipykernel: tests/test_notebooks.py runs lessons as notebooks in a kernel
        # pytest-xdist: pytest.ini runs the tests on every core (-n auto)
        "test": ["pytest", "pytest-xdist>=3", "hypothesis", "ruff>=0.8", "jupytext>=1.16",
                 "nbclient>=0.9", "ipykernel>=6"],
        # the GPU: numba-cuda for tinygen's kernels, CuPy for the arrays that live there (this
        # wheel is for CUDA 13 drivers; with a CUDA 12 driver install cupy-cuda12x instead).
        # numba-cuda 0.30.4 cannot compile a kernel under numpy 2.5 (it looks up np.row_stack,
        # which 2.5 removed; seen on an H200): numpy stays below 2.5 with this extra.
        "cuda": ["numba-cuda==0.30.4", "cupy-cuda13x>=14.2", "numpy<2.5"],
        # jupyter lab lessons/: jupytext's contents manager reads a percent-format script as a
        # notebook (Open With > Notebook) and saves it back as the same script. jupytext's
        # JupyterLab extension works with JupyterLab 4 from 1.15 on, and 1.16 made it for
        # JupyterLab 4 (its Jupytext menu and launcher items).
        "lessons": ["jupyterlab>=4", "jupytext>=1.16"],
    },
)
