"""Make tinygen/data/mnist_subset.npz, the MNIST subset shipped with tinygen, from the real files.

    TINYGEN_DATA=../shared/data/mnist python -m tinygen.data.make_bundled_subset

A class-balanced random subset: 1,000 images of each digit from the training split (10,000 in
all) and 200 of each from the test split (2,000), drawn without replacement with
np.random.default_rng(0) and kept in the order of the full files. Random rather than the first N
so that every digit is equally common, and so that the test subset samples both halves of the
test set (written by different people). Saved with np.savez_compressed as uint8, beside the
positions of the images in the full files (train_indices, test_indices), so that anyone with the
full data can check the subset against it. Needs the full files: it never falls back.
"""
import argparse
import sys
from pathlib import Path

import numpy as np

from tinygen.data import mnist

PER_CLASS = {"train": 1000, "test": 200}
SEED = 0


def balanced_indices(labels, per_class, rng):
    """Sorted positions of `per_class` random examples of each of the 10 digits in `labels`."""
    chosen = [rng.choice(np.flatnonzero(labels == digit), size=per_class, replace=False)
              for digit in range(10)]
    return np.sort(np.concatenate(chosen))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=None, help="folder of the four MNIST files "
                        "(default: the search path of load_mnist: $TINYGEN_DATA, the cache)")
    parser.add_argument("--out", default=str(Path(__file__).with_name(mnist.BUNDLED)))
    args = parser.parse_args(argv)

    rng = np.random.default_rng(SEED)
    arrays = {}
    for split in ("train", "test"):
        folder = mnist.find_mnist(split, args.root)
        if folder is None:
            sys.exit(f"make_bundled_subset: the MNIST {split} files are not in "
                     f"{[str(place) for place, _ in mnist._search_path(args.root)]}; "
                     f"set TINYGEN_DATA to the folder holding them")
        images, labels = mnist._load_folder(folder, split)  # checksums verified
        index = balanced_indices(labels, PER_CLASS[split], rng)
        arrays[f"{split}_images"] = images[index]  # (N, 28, 28) uint8
        arrays[f"{split}_labels"] = labels[index]  # (N,) uint8
        arrays[f"{split}_indices"] = index.astype(np.uint16)  # < 60000 fits
        print(f"{split}: {len(index)} of {len(labels)} images from {folder}")
    np.savez_compressed(args.out, **arrays)
    print(f"wrote {args.out} ({Path(args.out).stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
