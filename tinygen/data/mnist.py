"""MNIST: an IDX reader, a verified download with a cache, and a small subset bundled with tinygen.

    images, labels = tinygen.data.load_mnist("train")    # uint8 (60000, 28, 28), uint8 (60000,)
    images, labels = tinygen.data.load_mnist("test")     # uint8 (10000, 28, 28), uint8 (10000,)
    images, labels = tinygen.data.load_mnist("train", subset="bundled")   # (10000, 28, 28), offline

Where load_mnist looks for the four standard files (train-images-idx3-ubyte, ..., gzipped or not):
`root`, then the folder named by the environment variable TINYGEN_DATA, then the cache folder
$XDG_CACHE_HOME/tinygen/mnist (by default ~/.cache/tinygen/mnist). If they are in none of these, it
downloads them into the cache folder from the first of MIRRORS that answers. Every file, found or
downloaded, must have the SHA-256 of the official file (of its uncompressed contents): a file that
does not is an error, never silently replaced.

Offline (no network, or download=False), load_mnist says so in one warning and returns the bundled
subset instead: real MNIST images, 10,000 from the training split and 2,000 from the test split
(see load_bundled), which ship inside the package, so every lesson runs anywhere.
"""
import gzip
import hashlib
import http.client
import importlib.resources
import os
import secrets
import struct
import urllib.error
import urllib.parse
import urllib.request
import warnings
import zlib
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

# Tried in order; tests point this at a local server. A file's URL is mirror + name + ".gz".
MIRRORS = (
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
)
TIMEOUT = 30  # seconds without an answer before a mirror counts as unreachable

# SHA-256 of the official files' uncompressed contents (the .gz files differ between mirrors).
SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}

# split -> (images file, labels file)
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

BUNDLED = "mnist_subset.npz"  # inside this package; made by make_bundled_subset.py
BUNDLED_SIZES = {"train": 10000, "test": 2000}

_IDX_DTYPES = {0x08: "unsigned byte", 0x09: "signed byte", 0x0B: "short", 0x0C: "int",
               0x0D: "float", 0x0E: "double"}
_GZIP_MAGIC = b"\x1f\x8b"

_verified = set()  # (real path, mtime_ns, size) of local files whose checksum matched


class ChecksumError(ValueError):
    """A file (local or downloaded) whose contents are not the official MNIST file's."""


class DownloadError(OSError):
    """No mirror could be reached or none sent the file (the reasons are in the message)."""


# ---------------------------------------------------------------------------------------------
# Reading IDX files


def parse_idx(data, name="<bytes>"):
    """An IDX file's bytes (uncompressed) as a uint8 array of the shape its header gives.

    Header: 2 zero bytes, a dtype code (0x08 = unsigned byte, the only one MNIST uses), the number
    of dimensions, then each size as a big-endian uint32. ValueError naming `name` if it is not so.
    """
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        magic = data[:4].hex().upper() or "(empty)"
        raise ValueError(f"{name}: not an IDX file: its magic number is 0x{magic}, "
                         f"expected 0x000008NN (two zero bytes, dtype 0x08, NN dimensions)")
    code, ndim = data[2], data[3]
    if code != 0x08:
        kind = _IDX_DTYPES.get(code, "unknown")
        raise ValueError(f"{name}: IDX dtype code 0x{code:02X} ({kind}) is not supported; "
                         f"MNIST files hold unsigned bytes (0x08)")
    if ndim == 0:
        raise ValueError(f"{name}: IDX header gives 0 dimensions")
    offset = 4 + 4 * ndim
    if len(data) < offset:
        raise ValueError(f"{name}: file ends inside its IDX header ({len(data)} bytes, "
                         f"a header with {ndim} dimensions needs {offset})")
    shape = struct.unpack(f">{ndim}I", data[4:offset])
    expected = int(np.prod(shape, dtype=np.int64))
    if len(data) - offset != expected:
        raise ValueError(f"{name}: IDX header gives shape {shape} = {expected} bytes of data, "
                         f"but the file holds {len(data) - offset} bytes after the header")
    # A copy, so that the array is writable and does not keep the file's bytes alive.
    return np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(shape).copy()


def _read_bytes(path):
    """The uncompressed contents of a file, gzipped (recognised by its first bytes) or not."""
    data = Path(path).read_bytes()
    if data[:2] == _GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (EOFError, OSError, zlib.error) as e:
            raise ValueError(f"{path}: not a complete gzip file ({e})") from e
    return data


def read_idx(path):
    """Read one IDX file (gzipped or not) into a uint8 array, e.g. (60000, 28, 28). No checksum."""
    return parse_idx(_read_bytes(path), name=str(path))


def _read_verified(path, name):
    """read_idx(path), checking its contents against SHA256[name] once per path, mtime and size."""
    stat = os.stat(path)
    key = (os.path.realpath(path), stat.st_mtime_ns, stat.st_size)
    data = _read_bytes(path)
    array = parse_idx(data, name=str(path))  # a damaged header says more than a wrong checksum
    if key not in _verified:
        got = hashlib.sha256(data).hexdigest()
        if got != SHA256[name]:
            raise ChecksumError(
                f"{path}: not the official MNIST file {name}: the SHA-256 of its contents is "
                f"{got}, expected {SHA256[name]} (delete it, or point tinygen at good files)")
        _verified.add(key)
    return array


# ---------------------------------------------------------------------------------------------
# Finding, downloading and loading


def cache_dir():
    """Where downloads go: $XDG_CACHE_HOME/tinygen/mnist (by default ~/.cache/tinygen/mnist)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tinygen" / "mnist"


def _search_path(root=None):
    """The folders load_mnist searches, in order, each with a label for messages."""
    places = []
    if root is not None:
        places.append((Path(root), "root"))
    if os.environ.get("TINYGEN_DATA"):
        places.append((Path(os.environ["TINYGEN_DATA"]), "TINYGEN_DATA"))
    places.append((cache_dir(), "cache"))
    return places


def _file_in(folder, name):
    """folder/name or folder/name.gz, whichever exists (the uncompressed one first), else None."""
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def find_mnist(split="train", root=None):
    """The first folder of the search path that holds both files of `split`, else None."""
    _check_split(split)
    for folder, _ in _search_path(root):
        if all(_file_in(folder, name) for name in FILES[split]):
            return folder
    return None


def _reason(error):
    """An exception as a short one-line reason ('[Errno 111] Connection refused', 'HTTP 404')."""
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    if isinstance(error, urllib.error.URLError):
        error = error.reason
    text = str(error) or type(error).__name__
    return " ".join(text.split())


def _fetch(url, dest, name):
    """Download url (a gzip file) to dest atomically, checking SHA256[name] of its contents.

    Raises OSError or HTTPException when the file could not be fetched (an answer that is not a
    gzip file at all, such as an error or login page, counts as that), ChecksumError when what
    arrived is damaged (truncated, or other contents). Only a verified file is ever named dest.
    """
    tmp = dest.with_name(f"{dest.name}.tmp-{secrets.token_hex(4)}")
    head = b""  # the answer's first bytes
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            total = response.length  # Content-Length, or None
            sha = hashlib.sha256()
            inflate = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # 16+: gzip header expected
            received = 0
            # disable=None: a bar only when stderr is a terminal, no updates into a log file.
            with open(tmp, "xb") as f, tqdm(total=total, desc=dest.name, unit="B",
                                            unit_scale=True, unit_divisor=1024,
                                            disable=None) as bar:
                while chunk := response.read(1 << 16):
                    head = (head + chunk[:16])[:16]
                    f.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
                    sha.update(inflate.decompress(chunk))
                f.flush()
                os.fsync(f.fileno())  # on disk before the rename makes it the file
        _check_gzip_magic(head)
        got = sha.hexdigest()
        if total is not None and received < total:
            problem = f"is truncated ({received} of {total} bytes arrived)"
        elif not inflate.eof:
            problem = f"is truncated (its gzip stream ends early, after {received} bytes)"
        elif got != SHA256[name]:
            problem = "has the wrong contents"
        else:
            os.replace(tmp, dest)
            return
        what = "the part that arrived" if problem.startswith("is truncated") else "its contents"
        raise ChecksumError(f"{dest.name} from {url} {problem}: the SHA-256 of {what} "
                            f"(uncompressed) is {got}, expected {SHA256[name]}; the download "
                            f"was not kept")
    except zlib.error as e:
        _check_gzip_magic(head)
        raise ChecksumError(f"{dest.name} from {url} is not a valid gzip file ({e}): its "
                            f"contents do not have the SHA-256 {SHA256[name]}; the download "
                            f"was not kept") from e
    finally:
        if tmp.exists():
            tmp.unlink()


def _check_gzip_magic(head):
    """DownloadError if an answer does not start as a gzip file: not the file, not a damaged one."""
    if not head:
        raise DownloadError("the answer is empty")
    if head[:2] != _GZIP_MAGIC[:len(head)]:
        raise DownloadError(f"the answer is not a gzip file (it starts with {head!r})")


def download_mnist(split="train", folder=None, mirrors=None):
    """Download the two files of `split` into `folder` (default cache_dir()); returns the folder.

    Each file comes from the first mirror that gives a verified copy. DownloadError when no
    mirror could be reached; ChecksumError when none gave a good copy and one gave a damaged one
    (corrupt data is an error, not a reason to fall back).
    """
    _check_split(split)
    folder = cache_dir() if folder is None else Path(folder)
    mirrors = MIRRORS if mirrors is None else mirrors
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DownloadError(f"cannot create the folder {folder}: {_reason(e)}") from e
    for name in FILES[split]:
        if _file_in(folder, name):
            continue  # from an earlier, partly successful download (verified when read)
        failures = []
        damaged = []
        for mirror in mirrors:
            url = mirror.rstrip("/") + f"/{name}.gz"
            try:
                _fetch(url, folder / f"{name}.gz", name)
                break
            except ChecksumError as e:
                damaged.append(str(e))
            except (OSError, http.client.HTTPException) as e:
                host = urllib.parse.urlsplit(url).netloc
                failures.append(f"{host}: {_reason(e)}")
        else:
            if damaged:
                raise ChecksumError("; ".join(damaged + failures))
            raise DownloadError("; ".join(failures) or "no mirrors to try")
    return folder


def load_bundled(split="train"):
    """The subset of MNIST that ships with tinygen: (images uint8 (N, 28, 28), labels uint8 (N,)).

    N is 10,000 for "train" and 2,000 for "test": a class-balanced random subset of each split
    (1,000 and 200 images of each digit, drawn with np.random.default_rng(0) and kept in the
    files' order). The archive also holds `train_indices` and `test_indices`, the positions of the
    images in the full files.
    """
    _check_split(split)
    resource = importlib.resources.files(__package__).joinpath(BUNDLED)
    try:
        with resource.open("rb") as f, np.load(f) as archive:
            return archive[f"{split}_images"], archive[f"{split}_labels"]
    except FileNotFoundError as e:
        raise FileNotFoundError(f"the bundled MNIST subset {BUNDLED} is missing from the "
                                f"installed tinygen package (setup.py's package_data)") from e


def _check_split(split):
    if split not in FILES:
        raise ValueError(f"MNIST split must be 'train' or 'test', got {split!r}")


def _load_folder(folder, split):
    """Both verified files of `split` from `folder`: (images (N, 28, 28), labels (N,))."""
    image_name, label_name = FILES[split]
    image_path = _file_in(folder, image_name)
    label_path = _file_in(folder, label_name)
    images = _read_verified(image_path, image_name)
    labels = _read_verified(label_path, label_name)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(f"{image_path} holds images of shape {images.shape} and {label_path} "
                         f"labels of shape {labels.shape}: expected (N, 28, 28) and (N,)")
    return images, labels


def load_mnist(split="train", root=None, download=True, subset=None):
    """MNIST digits as (images uint8 (N, 28, 28), labels uint8 (N,)); N = 60000 train, 10000 test.

    Searches `root`, $TINYGEN_DATA and the cache folder, downloads into the cache if allowed, and
    falls back to the bundled subset (with one warning saying why) when the full data cannot be
    had. subset="bundled" returns the bundled subset directly: no search, no download, no warning.
    """
    _check_split(split)
    if subset == "bundled":
        return load_bundled(split)
    if subset is not None:
        raise ValueError(f"load_mnist: subset must be None or 'bundled', got {subset!r}")
    folder = find_mnist(split, root)
    if folder is None:
        places = ", ".join(str(place) for place, _ in _search_path(root))
        if not download:
            return _fall_back(split, f"MNIST {split} files not found in {places} (download=False)")
        try:
            folder = download_mnist(split)
        except DownloadError as e:
            return _fall_back(split, f"MNIST {split} files not found in {places} and download "
                                     f"failed ({e})")
    return _load_folder(folder, split)


def _fall_back(split, why):
    sizes = BUNDLED_SIZES
    warnings.warn(f"tinygen: {why}: using the bundled subset ({sizes['train']} train / "
                  f"{sizes['test']} test images)", RuntimeWarning, stacklevel=3)
    return load_bundled(split)
