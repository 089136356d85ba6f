"""MNIST: the IDX reader, the search path, the verified download (against a local HTTP server),
the offline fallback to the bundled subset, and the real files where this machine has them."""
import contextlib
import gzip
import hashlib
import http.server
import io
import os
import socket
import struct
import threading
import urllib.request
import warnings
from pathlib import Path

import numpy as np
import pytest

from tinygen.data import load_mnist, mnist, read_idx

# The real files: $TINYGEN_DATA if set, else the shared folder beside the repository (CI, dev).
DATA = Path(os.environ.get("TINYGEN_DATA") or Path(__file__).parents[2] / "shared/data/mnist")
needs_data = pytest.mark.skipif(
    not all((DATA / f"{name}.gz").is_file() or (DATA / name).is_file() for name in mnist.SHA256),
    reason=f"the full MNIST files are not in {DATA} (set TINYGEN_DATA to a folder holding them)")

# Published facts (shared/data/mnist/README.md) and one computed once from the official files.
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
TEST_PIXEL_SUM = 264923200


def idx_bytes(array):
    """An IDX file's bytes for a uint8 array, written from the format's description."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I",
                                                                        *array.shape)
    return header + array.astype(np.uint8).tobytes()


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    """No TINYGEN_DATA, the cache under tmp_path, no mirrors (no network): returns the cache."""
    monkeypatch.delenv("TINYGEN_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(mnist, "MIRRORS", ())
    monkeypatch.setattr(mnist, "TIMEOUT", 5)
    return tmp_path / "xdg" / "tinygen" / "mnist"


@pytest.fixture
def tiny(monkeypatch, rng):
    """Tiny MNIST-shaped IDX files (5 train, 3 test images) whose checksums stand in for MNIST's.

    Returns {name: uncompressed bytes}; SHA256 is patched to their hashes for this test.
    """
    files = {}
    for split, n in (("train", 5), ("test", 3)):
        images_name, labels_name = mnist.FILES[split]
        files[images_name] = idx_bytes(rng.integers(0, 256, (n, 28, 28)))
        files[labels_name] = idx_bytes(rng.integers(0, 10, (n,)))
    for name, data in files.items():
        monkeypatch.setitem(mnist.SHA256, name, hashlib.sha256(data).hexdigest())
    return files


class _Server:
    """A local HTTP server: routes maps a path to (status, body, content_length or None)."""

    def __init__(self):
        routes = self.routes = {}
        self.requests = []
        requests = self.requests

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                requests.append(self.path)
                status, body, length = routes.get(self.path, (404, b"not found", None))
                self.send_response(status)
                self.send_header("Content-Length", str(len(body) if length is None else length))
                self.end_headers()
                self.wfile.write(body)
                self.close_connection = True

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.01}, daemon=True)
        self.thread.start()

    def serve(self, prefix, files, **changes):
        """Serve files gzipped at prefix/NAME.gz; changes[NAME] = (status, body, length) instead."""
        for name, data in files.items():
            entry = changes.get(name, (200, gzip.compress(data, mtime=0), None))
            self.routes[f"{prefix}/{name}.gz"] = entry
        return f"{self.url}{prefix}/"


@pytest.fixture
def server():
    s = _Server()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


def closed_port_url():
    """A URL on 127.0.0.1 where nothing listens (the port was just released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/mnist/"


def expected_arrays(files, split):
    """(images, labels) of a split of the tiny files."""
    images_name, labels_name = mnist.FILES[split]
    return mnist.parse_idx(files[images_name]), mnist.parse_idx(files[labels_name])


# ---------------------------------------------------------------------------------------------
# The IDX reader


def test_read_idx_matches_the_array_written_from_the_format_description(tmp_path, rng):
    array = rng.integers(0, 256, (4, 28, 28)).astype(np.uint8)
    (tmp_path / "raw").write_bytes(idx_bytes(array))
    (tmp_path / "zipped.gz").write_bytes(gzip.compress(idx_bytes(array)))
    for path in (tmp_path / "raw", tmp_path / "zipped.gz"):
        out = read_idx(path)
        assert out.dtype == np.uint8 and out.shape == (4, 28, 28) and out.flags.writeable
        np.testing.assert_array_equal(out, array)


def test_read_idx_bad_magic_names_the_file(tmp_path):
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(b"<html>not an idx file</html>")
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte.*magic number is 0x3C68746D"):
        read_idx(path)


def test_read_idx_size_not_matching_the_header_names_the_file_and_both_sizes(tmp_path):
    path = tmp_path / "labels"
    path.write_bytes(idx_bytes(np.zeros(10, np.uint8))[:-3])  # the header promises 10 bytes
    with pytest.raises(ValueError, match=r"labels.*\(10,\) = 10 bytes.*holds 7 bytes"):
        read_idx(path)


def test_read_idx_rejects_a_non_byte_dtype_code(tmp_path):
    path = tmp_path / "floats"
    path.write_bytes(struct.pack(">BBBBI", 0, 0, 0x0D, 1, 1) + b"\0\0\0\0")
    with pytest.raises(ValueError, match=r"floats.*0x0D \(float\) is not supported"):
        read_idx(path)


def test_corrupt_local_file_in_root_is_an_error_naming_it(isolated, tiny, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    for name, data in tiny.items():
        (root / name).write_bytes(data)
    (root / "t10k-labels-idx1-ubyte").write_bytes(b"\x1f\x8b\x08\x00garbage")  # gzip, cut short
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte: not a complete gzip file"):
        load_mnist("test", root=root)
    (root / "t10k-labels-idx1-ubyte").write_bytes(b"\x00\x01\x08\x01" + bytes(7))
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte: not an IDX file: its magic"):
        load_mnist("test", root=root)


# ---------------------------------------------------------------------------------------------
# Search path and local verification (tiny files, checksums patched)


def test_root_comes_before_tinygen_data_before_the_cache(isolated, tiny, tmp_path, monkeypatch):
    folders = [tmp_path / "root", tmp_path / "env", isolated]
    for folder in folders:
        folder.mkdir(parents=True)
        for name, data in tiny.items():
            (folder / f"{name}.gz").write_bytes(gzip.compress(data))
    monkeypatch.setenv("TINYGEN_DATA", str(folders[1]))
    assert mnist.find_mnist("test", root=folders[0]) == folders[0]
    assert mnist.find_mnist("test") == folders[1]
    monkeypatch.delenv("TINYGEN_DATA")
    assert mnist.find_mnist("test", root=tmp_path / "nowhere") == folders[2]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # found: no fallback warning
        images, labels = load_mnist("test")
    np.testing.assert_array_equal(images, expected_arrays(tiny, "test")[0])
    np.testing.assert_array_equal(labels, expected_arrays(tiny, "test")[1])


def test_local_checksum_mismatch_names_the_file_and_both_checksums(isolated, tiny, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    for name, data in tiny.items():
        (root / name).write_bytes(data)
    data = bytearray(tiny["t10k-images-idx3-ubyte"])
    data[-1] ^= 0xFF  # one pixel: the header still parses
    (root / "t10k-images-idx3-ubyte").write_bytes(data)
    got = hashlib.sha256(data).hexdigest()
    with pytest.raises(mnist.ChecksumError) as info:
        load_mnist("test", root=root)
    message = str(info.value)
    assert "t10k-images-idx3-ubyte" in message
    assert got in message and mnist.SHA256["t10k-images-idx3-ubyte"] in message


def test_verification_is_cached_per_path_mtime_and_size(isolated, tiny, tmp_path, monkeypatch):
    root = tmp_path / "root"
    root.mkdir()
    for name, data in tiny.items():
        (root / name).write_bytes(data)
    load_mnist("train", root=root)

    def no_hashing(*args):
        raise AssertionError("a verified, unchanged file was hashed again")

    with monkeypatch.context() as patched:
        patched.setattr(mnist.hashlib, "sha256", no_hashing)
        load_mnist("train", root=root)  # unchanged files: not hashed again
    before = mnist._verified.copy()
    changed = idx_bytes(np.zeros(6, np.uint8))  # another size: verified afresh, and wrong
    (root / "train-labels-idx1-ubyte").write_bytes(changed)
    monkeypatch.setitem(mnist.SHA256, "train-labels-idx1-ubyte",
                        hashlib.sha256(tiny["train-labels-idx1-ubyte"]).hexdigest())
    with pytest.raises(mnist.ChecksumError, match="train-labels-idx1-ubyte"):
        load_mnist("train", root=root)
    assert mnist._verified == before  # a file that failed is not remembered as good


# ---------------------------------------------------------------------------------------------
# Download, against a local HTTP server


def test_download_lands_in_the_cache_folder(isolated, tiny, server, monkeypatch):
    monkeypatch.setattr(mnist, "MIRRORS", (server.serve("/a", tiny),))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        images, labels = load_mnist("test")
    expected = expected_arrays(tiny, "test")
    np.testing.assert_array_equal(images, expected[0])
    np.testing.assert_array_equal(labels, expected[1])
    assert sorted(p.name for p in isolated.iterdir()) == [
        "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]  # only the split asked for
    server.requests.clear()
    load_mnist("test")  # now found in the cache: no second download
    assert server.requests == []


class FakeTerminal(io.StringIO):
    """A text stream that says it is a terminal, as sys.stderr is in an interactive shell."""

    def isatty(self):
        return True


@pytest.mark.parametrize("stderr, bar_drawn", [(FakeTerminal, True), (io.StringIO, False)])
def test_the_download_bar_is_drawn_only_when_stderr_is_a_terminal(isolated, tiny, server,
                                                                  monkeypatch, stderr, bar_drawn):
    monkeypatch.setattr(mnist, "MIRRORS", (server.serve("/a", tiny),))
    stream = stderr()
    with contextlib.redirect_stderr(stream):
        mnist.download_mnist("test")
    assert ("\r" in stream.getvalue()) == bar_drawn  # no bar updates in a log file
    assert ("t10k-images-idx3-ubyte.gz" in stream.getvalue()) == bar_drawn


def test_first_mirror_failing_and_second_succeeding(isolated, tiny, server, monkeypatch):
    good = server.serve("/good", tiny)
    monkeypatch.setattr(mnist, "MIRRORS", (closed_port_url(), server.url + "/missing/", good))
    images, _ = load_mnist("train")
    np.testing.assert_array_equal(images, expected_arrays(tiny, "train")[0])
    assert "/missing/train-images-idx3-ubyte.gz" in server.requests  # 404 there, then /good


def test_checksum_mismatch_from_every_mirror_is_an_error_and_nothing_is_kept(
        isolated, tiny, server, monkeypatch):
    other = idx_bytes(np.ones((3, 28, 28), np.uint8))
    name = "t10k-images-idx3-ubyte"
    url = server.serve("/bad", tiny, **{name: (200, gzip.compress(other), None)})
    monkeypatch.setattr(mnist, "MIRRORS", (url,))
    with pytest.raises(mnist.ChecksumError) as info:
        load_mnist("test")
    message = str(info.value)
    assert f"{name}.gz" in message and "wrong contents" in message
    assert hashlib.sha256(other).hexdigest() in message and mnist.SHA256[name] in message
    assert list(isolated.iterdir()) == []  # neither the bad file nor a temporary one


def test_a_damaged_mirror_is_skipped_when_the_next_one_is_good(isolated, tiny, server,
                                                               monkeypatch):
    bad = server.serve("/bad", tiny, **{"t10k-images-idx3-ubyte": (200, gzip.compress(b"x"), None)})
    monkeypatch.setattr(mnist, "MIRRORS", (bad, server.serve("/good", tiny)))
    images, _ = load_mnist("test")
    np.testing.assert_array_equal(images, expected_arrays(tiny, "test")[0])


def test_truncated_gzip_is_an_error_and_nothing_is_kept(isolated, tiny, server, monkeypatch):
    name = "train-images-idx3-ubyte"
    compressed = gzip.compress(tiny[name])
    url = server.serve("/cut", tiny, **{name: (200, compressed[: len(compressed) // 2], None)})
    monkeypatch.setattr(mnist, "MIRRORS", (url,))
    with pytest.raises(mnist.ChecksumError,
                       match=rf"{name}.gz from .* is truncated \(its gzip stream ends early.*"
                             rf"expected {mnist.SHA256[name]}"):
        load_mnist("train")
    assert sorted(p.name for p in isolated.iterdir()) == []


def test_connection_closed_before_content_length_is_a_truncated_download(isolated, tiny, server,
                                                                         monkeypatch):
    name = "t10k-labels-idx1-ubyte"
    compressed = gzip.compress(tiny[name])
    url = server.serve("/short", tiny,
                       **{name: (200, compressed[:20], len(compressed))})  # promises more
    monkeypatch.setattr(mnist, "MIRRORS", (url,))
    with pytest.raises(mnist.ChecksumError, match=rf"is truncated \(20 of {len(compressed)} bytes"):
        load_mnist("test")
    assert [p.name for p in isolated.iterdir()] == ["t10k-images-idx3-ubyte.gz"]  # verified one


def test_unreachable_server_falls_back_to_the_bundled_subset_with_one_line(isolated,
                                                                           monkeypatch):
    monkeypatch.setattr(mnist, "MIRRORS", (closed_port_url(), closed_port_url()))
    with pytest.warns(RuntimeWarning) as record:
        images, labels = load_mnist("test")
    assert len(record) == 1
    message = str(record[0].message)
    assert "\n" not in message
    assert "download failed" in message and "refused" in message.lower()
    assert "using the bundled subset (10000 train / 2000 test images)" in message
    assert str(isolated) in message  # says where it looked
    assert record[0].filename == __file__  # points at the caller
    bundled = load_mnist("test", subset="bundled")
    np.testing.assert_array_equal(images, bundled[0])
    np.testing.assert_array_equal(labels, bundled[1])


@pytest.mark.parametrize("body, reason", [
    (b"<html>Please log in to the hotel wifi</html>", "not a gzip file"),
    (b"", "empty"),
])
def test_a_page_that_is_not_the_file_counts_as_a_failed_download(isolated, tiny, server,
                                                                 monkeypatch, body, reason):
    url = server.serve("/portal", tiny, **{name: (200, body, None) for name in tiny})
    monkeypatch.setattr(mnist, "MIRRORS", (url,))
    with pytest.warns(RuntimeWarning, match=rf"{reason}.*using the bundled subset"):
        images, _ = load_mnist("train")
    assert images.shape == (10000, 28, 28)
    assert list(isolated.iterdir()) == []


def test_download_false_falls_back_without_touching_the_network(isolated, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("download=False must not open a connection")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    with pytest.warns(RuntimeWarning,
                      match=r"not found in .* \(download=False\): using the bundled"):
        images, labels = load_mnist("train", download=False)
    assert images.shape == (10000, 28, 28) and labels.shape == (10000,)
    assert not isolated.exists()


# ---------------------------------------------------------------------------------------------
# The bundled subset


def test_bundled_subset_sizes_dtypes_and_every_digit_equally_often(isolated, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("subset='bundled' must not download")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    for split, n in (("train", 10000), ("test", 2000)):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # asked for explicitly: no message
            images, labels = load_mnist(split, subset="bundled")
        assert images.shape == (n, 28, 28) and images.dtype == np.uint8
        assert labels.shape == (n,) and labels.dtype == np.uint8
        assert np.bincount(labels, minlength=10).tolist() == [n // 10] * 10
        assert 0.1 < images.mean() / 255 < 0.16  # real digits, not noise or zeros


def test_bad_split_or_subset_is_a_clear_error():
    with pytest.raises(ValueError, match="'train' or 'test', got 'val'"):
        load_mnist("val")
    with pytest.raises(ValueError, match="subset must be None or 'bundled'"):
        load_mnist("train", subset="small")


# ---------------------------------------------------------------------------------------------
# The real files (skipped where they are not available)


@pytest.fixture(scope="module")
def real():
    return {split: load_mnist(split, root=DATA, download=False) for split in ("train", "test")}


@needs_data
def test_real_files_shapes_dtypes_and_published_label_counts(real):
    for split, n, counts in (("train", 60000, TRAIN_COUNTS), ("test", 10000, TEST_COUNTS)):
        images, labels = real[split]
        assert images.shape == (n, 28, 28) and images.dtype == np.uint8
        assert labels.shape == (n,) and labels.dtype == np.uint8
        assert labels.max() <= 9
        assert np.bincount(labels).tolist() == counts
    assert int(real["test"][0].sum(dtype=np.int64)) == TEST_PIXEL_SUM
    assert round(float(real["train"][0].mean()) / 255, 4) == 0.1307  # the usual normalisation


@needs_data
def test_hard_coded_checksums_match_the_published_sums_and_were_checked(real):
    published = {}
    sums_file = DATA / "SHA256SUMS.uncompressed"
    if sums_file.is_file():
        for line in sums_file.read_text().splitlines():
            digest, name = line.split()
            published[name] = digest
        assert published == mnist.SHA256
    for name in mnist.SHA256:
        path = mnist._file_in(DATA, name)
        stat = path.stat()
        assert (os.path.realpath(path), stat.st_mtime_ns, stat.st_size) in mnist._verified


@needs_data
def test_tinygen_data_env_var_is_searched(real, monkeypatch, tmp_path):
    monkeypatch.setenv("TINYGEN_DATA", str(DATA))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        images, labels = load_mnist("test", download=False)
    np.testing.assert_array_equal(images, real["test"][0])
    np.testing.assert_array_equal(labels, real["test"][1])


@needs_data
def test_uncompressed_files_read_the_same_and_are_verified(real, isolated, tmp_path):
    root = tmp_path / "raw"
    root.mkdir()
    for name in mnist.FILES["test"]:
        (root / name).write_bytes(gzip.decompress(mnist._file_in(DATA, name).read_bytes()))
    images, labels = load_mnist("test", root=root)
    np.testing.assert_array_equal(images, real["test"][0])
    np.testing.assert_array_equal(labels, real["test"][1])
    data = bytearray((root / "t10k-labels-idx1-ubyte").read_bytes())
    data[100] = (data[100] + 1) % 10  # one wrong label
    (root / "t10k-labels-idx1-ubyte").write_bytes(data)
    with pytest.raises(mnist.ChecksumError, match=r"raw/t10k-labels-idx1-ubyte: not the official"):
        load_mnist("test", root=root)


@needs_data
def test_bundled_subset_is_the_real_images_at_its_indices(real):
    with np.load(Path(mnist.__file__).with_name(mnist.BUNDLED)) as archive:
        for split in ("train", "test"):
            index = archive[f"{split}_indices"]
            assert np.all(np.diff(index.astype(np.int64)) > 0)  # distinct, in file order
            images, labels = load_mnist(split, subset="bundled")
            np.testing.assert_array_equal(images, real[split][0][index])
            np.testing.assert_array_equal(labels, real[split][1][index])
