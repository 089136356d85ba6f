"""Install tinygen: pip install -e ".[test]" (add ",cuda" for numba-cuda on a GPU machine)."""
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
        "test": ["pytest", "hypothesis", "ruff>=0.8"],  # ruff: the lint of .ci/run (ruff.toml)
        "cuda": ["numba-cuda"],
    },
)
