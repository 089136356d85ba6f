"""Plots that write image files: sample grids, loss curves, latent maps, GAN pictures.

    plot.image_grid(model.sample(64), "runs/vae/samples.png")
    plot.curves(history, "runs/vae/curves.png", logy=True)

Every function takes NumPy arrays or Tensors, writes the file atomically (a temporary file beside
`path`, then a rename; missing folders are created) and returns `path`. The format follows the
suffix (no suffix: PNG). Figures are built with matplotlib's object-oriented API on an Agg canvas:
pyplot is never imported, so nothing needs a display and the backend a user chose is left alone.
"""
import math
import os
import secrets
from statistics import NormalDist

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .autograd import no_grad
from .devices import host_array

_DPI = 100
_GRID_PAD = 2  # pixels of white between the images of a grid (in image pixels)
_TITLE_PT = 8  # font size of the per-image titles
_MAX_SIDE = 1200  # screen pixels: a grid is not drawn larger than this unless each pixel is one


# ---------------------------------------------------------------- your own figures

def new_figure(width=6.0, height=4.0, dpi=_DPI):
    """An empty matplotlib Figure (width x height inches) for a plot of your own, no pyplot:
    fig = plot.new_figure(); ax = fig.add_subplot(); ax.hist(...); plot.save(fig, "h.png")."""
    return _figure(width, height, dpi, layout="constrained")


def save(fig, path, dpi=_DPI):
    """Write a Figure to path atomically, as every function here does; returns path."""
    return _save(fig, path, "save", dpi)


# ---------------------------------------------------------------- helpers

def _figure(width, height, dpi=_DPI, layout=None):
    """A Figure of width x height inches drawn by Agg, with no pyplot state behind it."""
    fig = Figure(figsize=(width, height), dpi=dpi, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path, who, dpi=_DPI):
    """Write fig to path through a temporary file in the same folder, then rename; returns path."""
    path = os.fspath(path)
    folder, name = os.path.split(path)
    if not name:
        raise ValueError(f"{who}: '{path}' names a folder, not a file")
    suffix = os.path.splitext(name)[1].lower().lstrip(".")
    fmt = suffix or "png"
    supported = fig.canvas.get_supported_filetypes()
    if fmt not in supported:
        raise ValueError(f"{who}: cannot write '.{fmt}' files; use one of "
                         f"{', '.join('.' + s for s in sorted(supported))}")
    if folder:
        os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{name}.tmp-{secrets.token_hex(4)}")
    try:
        with open(tmp, "xb") as f:  # "x": never take over a file that is not ours
            fig.savefig(f, format=fmt, dpi=dpi)
        os.replace(tmp, path)  # readers see the old file or the whole new one, never half
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def _values_on(f, x):
    """f evaluated on x when f is callable (under no_grad), else f itself, as an array."""
    if callable(f):
        with no_grad():
            f = f(x)
    return host_array(f, np.float64)


def _as_images(images, who):
    """Images as (N, H, W) (grey) or (N, H, W, 3) (colour) from any of the accepted layouts."""
    x = host_array(images)
    if x.ndim == 2:  # (N, D): flat images
        if x.shape[1] != 28 * 28:
            raise ValueError(f"{who}: flat images of length {x.shape[1]} (shape {x.shape}) have no "
                             f"known height and width (only 784 -> 28 x 28); reshape them to "
                             f"(N, H, W) first")
        x = x.reshape(len(x), 28, 28)
    elif x.ndim == 4:  # (N, C, H, W), channels first as in tinygen's conv layers
        if x.shape[1] == 1:
            x = x[:, 0]
        elif x.shape[1] == 3:
            x = x.transpose(0, 2, 3, 1)  # (N, H, W, 3)
        else:
            raise ValueError(f"{who}: images of shape {x.shape} have {x.shape[1]} channels; "
                             f"expected (N, 1, H, W) or (N, 3, H, W)")
    elif x.ndim != 3:
        raise ValueError(f"{who}: expected images of shape (N, H, W), (N, 1, H, W), (N, 3, H, W) "
                         f"or (N, 784), got {x.shape}")
    if len(x) == 0:
        raise ValueError(f"{who}: no images to draw (shape {x.shape})")
    if not np.issubdtype(x.dtype, np.number) and x.dtype != bool:
        raise TypeError(f"{who}: images must be numbers, got dtype {x.dtype}")
    return x.astype(np.float64)


def _auto_range(x):
    """(lo, hi): [-1, 1] or [0, 1] for data inside them (tanh, sigmoid outputs), else [min, max]."""
    finite = x[np.isfinite(x)]
    if finite.size == 0:
        return 0.0, 1.0
    lo, hi = float(finite.min()), float(finite.max())
    if lo < 0:
        return (-1.0, 1.0) if lo >= -1 and hi <= 1 else (lo, hi)
    if hi <= 1:
        return 0.0, 1.0
    return lo, hi


def _to_rgba(x, value_range, cmap, who):
    """Images (N, H, W) or (N, H, W, 3) mapped through value_range (and cmap) to (N, H, W, 4)."""
    if value_range is None:
        lo, hi = _auto_range(x)
        if not hi > lo:
            hi = lo + 1.0  # constant images: any range shows them as one colour
    elif len(value_range) != 2 or not float(value_range[1]) > float(value_range[0]):
        raise ValueError(f"{who}: value_range must be (lo, hi) with lo < hi, got {value_range}")
    else:
        lo, hi = float(value_range[0]), float(value_range[1])
    unit = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    if unit.ndim == 4:  # colour images ignore cmap
        return np.concatenate([unit, np.ones(unit.shape[:3] + (1,))], axis=-1)
    return colormaps[cmap](unit)  # (N, H, W, 4)


def _tile(rgba, ncol, pad, title_rows):
    """Tile (N, H, W, 4) images row-major into one (rows * (H + pad) + pad, ...) white canvas."""
    n, h, w, _ = rgba.shape
    nrows = math.ceil(n / ncol)
    cell_h, cell_w = title_rows + h + pad, w + pad
    canvas = np.ones((nrows * cell_h + pad, ncol * cell_w + pad, 4))
    for i in range(n):
        top = (i // ncol) * cell_h + pad + title_rows
        left = (i % ncol) * cell_w + pad
        canvas[top:top + h, left:left + w] = rgba[i]
    return canvas


def _draw_grid(x, path, ncol, titles, cmap, value_range, pad, dpi, who):
    """Draw (N, H, W[, 3]) images as a grid of ncol columns, each image pixel a whole block of
    screen pixels (nearest-neighbour, so digits stay crisp), and save it to path."""
    n, h, w = x.shape[:3]
    longest = max(math.ceil(n / ncol) * (h + pad), ncol * (w + pad)) + pad
    # screen pixels per image pixel: about an inch a cell, but big grids shrink to fit
    scale = max(1, min(round(dpi / max(h, w)), _MAX_SIDE // longest))
    title_rows = 0
    if titles is not None:
        title_rows = math.ceil(1.6 * _TITLE_PT / 72 * dpi / scale)  # 1.6 lines of text
    canvas = _tile(_to_rgba(x, value_range, cmap, who), ncol, pad, title_rows)
    height, width = canvas.shape[0] * scale, canvas.shape[1] * scale
    # + 0.1 pixel: Agg truncates width * dpi, and a float a hair under the integer would lose one
    fig = _figure((width + 0.1) / dpi, (height + 0.1) / dpi, dpi)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    ax.imshow(canvas, interpolation="nearest", aspect="auto")
    for i, title in enumerate(titles or []):
        x_mid = (i % ncol) * (w + pad) + pad + w / 2 - 0.5
        y_mid = (i // ncol) * (title_rows + h + pad) + pad + title_rows / 2 - 0.5
        ax.text(x_mid, y_mid, str(title), ha="center", va="center", fontsize=_TITLE_PT)
    return _save(fig, path, who, dpi)


# ---------------------------------------------------------------- images

def image_grid(images, path, nrow=None, titles=None, cmap="gray", value_range=None, dpi=_DPI):
    """Save images as one grid picture; returns path.

    images: (N, H, W), (N, 1, H, W), (N, 3, H, W) or flat MNIST (N, 784).
    nrow: images per row, as torchvision's make_grid (default: a square-ish grid, ceil(sqrt(N))).
    titles: N strings, one above each image.
    value_range: (lo, hi) shown as black and white; default [-1, 1] when the data has negative
    values inside [-1, 1] (tanh outputs), [0, 1] when it lies in [0, 1], else its [min, max].
    Each image pixel becomes a square block of about dpi / max(H, W) screen pixels (fewer for
    grids that would be over 1200 pixels wide or high).
    """
    who = "image_grid"
    x = _as_images(images, who)
    n = len(x)
    if nrow is None:
        ncol = math.ceil(math.sqrt(n))
    elif isinstance(nrow, (int, np.integer)) and not isinstance(nrow, bool) and nrow >= 1:
        ncol = min(int(nrow), n)
    else:
        raise ValueError(f"{who}: nrow (images per row) must be a positive integer, got {nrow!r}")
    if titles is not None and len(titles) != n:
        raise ValueError(f"{who}: got {len(titles)} titles for {n} images")
    return _draw_grid(x, path, ncol, titles, cmap, value_range, _GRID_PAD, dpi, who)



def epoch_grids(directory, value_range=None):
    """on_samples for GAN.sample_watcher: saves each epoch's images as a grid,
    directory/samples_epoch_NNN.png. Returns the callback; its `paths` lists what it wrote."""
    def save(epoch, images):
        path = os.path.join(directory, f"samples_epoch_{epoch:03d}.png")
        save.paths.append(image_grid(images, path, value_range=value_range))

    save.paths = []
    return save


def latent_manifold(decode, path, n=20, span=3.0, image_shape=(28, 28), grid="normal",
                    cmap="gray", value_range=None, dpi=_DPI):
    """Decode an n x n grid of 2-D latent points and tile the images; returns path.

    decode: maps a (n * n, 2) float32 array to images (n * n, H * W), (n * n, H, W) or
    (n * n, 1, H, W) (arrays or Tensors; it runs under no_grad).
    grid: "normal" places the points at the Gaussian quantiles of the midpoints of a uniform
    grid in (0, 1), as in Kingma & Welling's figure 4 (span is not used); "uniform" spaces them
    evenly over [-span, span]^2.
    Columns run along z1 (left to right, increasing), rows along z2 (bottom to top, increasing).
    """
    who = "latent_manifold"
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"{who}: n must be a positive integer, got {n!r}")
    if grid == "normal":
        probs = (np.arange(n) + 0.5) / n  # midpoints avoid the infinite quantiles of 0 and 1
        axis = np.array([NormalDist().inv_cdf(p) for p in probs])
    elif grid == "uniform":
        if not span > 0:
            raise ValueError(f"{who}: span must be positive, got {span!r}")
        axis = np.linspace(-span, span, n)
    else:
        raise ValueError(f"{who}: grid must be 'normal' or 'uniform', got {grid!r}")
    z1, z2 = np.meshgrid(axis, axis[::-1])  # row 0 (top of the picture) holds the largest z2
    z = np.stack([z1.ravel(), z2.ravel()], axis=1).astype(np.float32)  # (n * n, 2), row-major
    with no_grad():
        out = host_array(decode(z))
    h, w = image_shape
    if out.shape[0] != n * n or out[0].size != h * w:
        raise ValueError(f"{who}: decode returned shape {out.shape} for {n * n} points; expected "
                         f"({n * n}, {h * w}) or ({n * n}, {h}, {w}) for image_shape {image_shape}")
    images = out.reshape(n * n, h, w).astype(np.float64)
    return _draw_grid(images, path, n, None, cmap, value_range, 0, dpi, who)


# ---------------------------------------------------------------- training curves

def _history_columns(history, who):
    """{name: (epochs (E,), values (E,))} from {name: [values]} or per-epoch [{name: value}]."""
    if isinstance(history, dict):
        columns = {}
        for name, values in history.items():
            v = np.array([float(host_array(value)) for value in values])
            columns[name] = (np.arange(1, len(v) + 1), v)
        return columns
    if isinstance(history, (list, tuple)) and all(isinstance(r, dict) for r in history):
        points = {}
        for epoch, record in enumerate(history, start=1):  # a metric may skip some epochs
            for name, value in record.items():
                points.setdefault(name, []).append((epoch, float(host_array(value))))
        return {name: tuple(np.array(c) for c in zip(*pts)) for name, pts in points.items()}
    raise TypeError(f"{who}: history must be a dict {{name: [one value per epoch]}} or a list of "
                    f"per-epoch dicts, got {type(history).__name__}")


def curves(history, path, keys=None, title=None, logy=False, dpi=_DPI):
    """Plot training curves, one line per metric against the epoch (1-based); returns path.

    history: {name: [one number per epoch]} (what train.fit returns) or [{name: number}, ...].
    keys: the names to draw (default: all). A "val_<name>" line is dashed in <name>'s colour.
    logy: a logarithmic y axis (every drawn value must then be positive).
    """
    who = "curves"
    columns = _history_columns(history, who)
    if keys is None:
        keys = list(columns)
    missing = [k for k in keys if k not in columns]
    if missing:
        raise KeyError(f"{who}: no metric named {', '.join(map(repr, missing))} in the history; "
                       f"it has {', '.join(map(repr, columns)) or 'nothing'}")
    if not keys:
        raise ValueError(f"{who}: nothing to draw (the history is empty)")
    if logy:
        for k in keys:
            values = columns[k][1]
            if np.any(values[np.isfinite(values)] <= 0):
                raise ValueError(f"{who}: logy needs positive values, but {k!r} goes down to "
                                 f"{np.nanmin(values):.4g}; use logy=False")
    fig = _figure(6.4, 4.0, dpi, layout="constrained")
    ax = fig.add_subplot()
    colours = {}
    for k in keys:
        base = k[4:] if k.startswith("val_") else k
        colour = colours.setdefault(base, f"C{len(colours) % 10}")
        epochs, values = columns[k]
        style = "--" if k.startswith("val_") else "-"
        marker = "o" if len(values) <= 30 else None  # single epochs are visible as points
        ax.plot(epochs, values, style, color=colour, marker=marker, markersize=3, label=k)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    if logy:
        ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title)
    return _save(fig, path, who, dpi)


# ---------------------------------------------------------------- latent codes

def latent_scatter(codes, labels, path, title=None, dpi=_DPI):
    """Scatter 2-D latent codes coloured by their integer class; returns path.

    codes: (N, 2). labels: (N,) integers, or None for one colour. Up to 10 classes get tab10
    colours and a legend; more get a colour bar.
    """
    who = "latent_scatter"
    z = host_array(codes, np.float64)
    if z.ndim != 2 or z.shape[1] != 2:
        raise ValueError(f"{who}: codes must have shape (N, 2), got {z.shape}; "
                         f"project higher-dimensional codes to 2-D first (e.g. PCA)")
    fig = _figure(6.0, 5.0, dpi, layout="constrained")
    ax = fig.add_subplot()
    size = 12 if len(z) <= 2000 else 4
    if labels is None:
        ax.scatter(z[:, 0], z[:, 1], s=size, alpha=0.6, linewidths=0)
    else:
        y = host_array(labels)
        if y.shape != (len(z),):
            raise ValueError(f"{who}: labels must have shape ({len(z)},) to match codes "
                             f"{z.shape}, got {y.shape}")
        classes = np.unique(y)
        if len(classes) <= 10:
            for i, c in enumerate(classes):
                at = y == c
                ax.scatter(z[at, 0], z[at, 1], s=size, alpha=0.6, linewidths=0,
                           color=colormaps["tab10"](i), label=str(c))
            ax.legend(title="label", markerscale=2, loc="center left", bbox_to_anchor=(1, 0.5))
        else:
            points = ax.scatter(z[:, 0], z[:, 1], c=y, s=size, alpha=0.6, linewidths=0,
                                cmap="viridis")
            fig.colorbar(points, ax=ax, label="label")
    ax.set_xlabel("z1")
    ax.set_ylabel("z2")
    ax.set_aspect("equal", adjustable="datalim")
    if title:
        ax.set_title(title)
    return _save(fig, path, who, dpi)


# ---------------------------------------------------------------- GAN pictures

def density_1d(x_grid, path, data_density=None, model_density=None, discriminator=None,
               samples=None, title=None, dpi=_DPI):
    """Goodfellow et al.'s 1-D GAN picture on x_grid (K,); returns path.

    data_density: black dashed; model_density: green line; samples: the generator's samples
    (M,), drawn as a green histogram; discriminator: D(x) in [0, 1], blue dotted, on its own
    right-hand axis. Each curve is an array (K,) or a callable mapping x_grid (K,) to (K,);
    an object with a log_density method (tinygen.data.toy) also serves as a density.
    """
    who = "density_1d"
    x = host_array(x_grid, np.float64)
    if x.ndim != 1 or len(x) < 2 or not x.max() > x.min():
        raise ValueError(f"{who}: x_grid must have shape (K,) with K >= 2 distinct values, "
                         f"got shape {x.shape}")
    lo, hi = float(x.min()), float(x.max())
    if all(f is None for f in (data_density, model_density, discriminator, samples)):
        raise ValueError(f"{who}: nothing to draw; give data_density, model_density, "
                         f"discriminator or samples")

    def on_grid(f, name):
        if hasattr(f, "log_density"):
            values = np.exp(_values_on(f.log_density, x.astype(np.float32)))
        else:
            values = _values_on(f, x.astype(np.float32))
        if values.shape != x.shape:
            raise ValueError(f"{who}: {name} gives shape {values.shape} on x_grid {x.shape}; "
                             f"expected {x.shape}")
        return values

    fig = _figure(6.4, 4.0, dpi, layout="constrained")
    ax = fig.add_subplot()
    if samples is not None:
        s = host_array(samples, np.float64).ravel()
        if len(s) == 0:
            raise ValueError(f"{who}: samples is empty")
        bins = min(60, max(10, len(s) // 20))
        inside = s[(s >= lo) & (s <= hi)]
        # each sample weighs 1 / (M * bin width): a density of *all* M samples, even those
        # that fall outside the grid
        weights = np.full(len(inside), bins / (len(s) * (hi - lo)))
        ax.hist(inside, bins=bins, range=(lo, hi), weights=weights, color="green", alpha=0.3,
                label="generator samples")
    if data_density is not None:
        ax.plot(x, on_grid(data_density, "data_density"), "k--", label="data p(x)")
    if model_density is not None:
        ax.plot(x, on_grid(model_density, "model_density"), "g-", label="generator p_g(x)")
    ax.set_xlabel("x")
    ax.set_ylabel("density")
    ax.set_xlim(lo, hi)
    handles, labels = ax.get_legend_handles_labels()
    if discriminator is not None:
        right = ax.twinx()
        handles += right.plot(x, on_grid(discriminator, "discriminator"), "b:", linewidth=2)
        labels.append("D(x)")
        right.set_ylim(0, 1.05)
        right.set_ylabel("D(x)")
    ax.legend(handles, labels, loc="upper left")
    if title:
        ax.set_title(title)
    return _save(fig, path, who, dpi)


def samples_2d(samples, path, data_density=None, extent=None, modes=None, title=None,
               resolution=200, dpi=_DPI):
    """Scatter 2-D samples (N, 2) over an optional heat map of the data's log-density; returns path.

    data_density: a callable log_density((k, 2) float32) -> (k,) (or an object with a
    log_density method, such as tinygen.data.toy.Ring), evaluated on a resolution x resolution
    grid over extent; the map is clipped 12 nats below its peak so that narrow modes show.
    extent: (xmin, xmax, ymin, ymax); default: the samples' and modes' box plus a margin.
    modes: (K, 2) points marked with red crosses.
    """
    who = "samples_2d"
    s = host_array(samples, np.float64)
    if s.ndim != 2 or s.shape[1] != 2:
        raise ValueError(f"{who}: samples must have shape (N, 2), got {s.shape}")
    m = None
    if modes is not None:
        m = host_array(modes, np.float64)
        if m.ndim != 2 or m.shape[1] != 2:
            raise ValueError(f"{who}: modes must have shape (K, 2), got {m.shape}")
    if extent is None:
        box = s if m is None else np.concatenate([s, m])
        box = box[np.all(np.isfinite(box), axis=1)]
        if len(box) == 0:
            raise ValueError(f"{who}: no finite samples or modes to place the picture; "
                             f"give extent=(xmin, xmax, ymin, ymax)")
        lo, hi = box.min(axis=0), box.max(axis=0)
        margin = 0.1 * np.maximum(hi - lo, 1e-3) + 0.1
        extent = (lo[0] - margin[0], hi[0] + margin[0], lo[1] - margin[1], hi[1] + margin[1])
    x0, x1, y0, y1 = map(float, extent)
    if not (x1 > x0 and y1 > y0):
        raise ValueError(f"{who}: extent must be (xmin, xmax, ymin, ymax) with min < max, "
                         f"got {extent}")
    fig = _figure(5.5, 5.0, dpi, layout="constrained")
    ax = fig.add_subplot()
    if data_density is not None:
        log_density = getattr(data_density, "log_density", data_density)
        gx, gy = np.meshgrid(np.linspace(x0, x1, resolution), np.linspace(y0, y1, resolution))
        grid = np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float32)  # (R * R, 2)
        logp = _values_on(log_density, grid)
        if logp.size != len(grid):
            raise ValueError(f"{who}: data_density gives shape {logp.shape} on {grid.shape} "
                             f"points; expected ({len(grid)},)")
        logp = logp.reshape(resolution, resolution)
        peak = np.max(np.where(np.isfinite(logp), logp, -np.inf))
        if not np.isfinite(peak):
            raise ValueError(f"{who}: data_density is not finite anywhere on extent {extent}")
        heat = ax.imshow(np.clip(logp, peak - 12.0, peak), origin="lower", extent=(x0, x1, y0, y1),
                         cmap="Blues", aspect="auto", interpolation="bilinear")
        fig.colorbar(heat, ax=ax, label="data log-density", shrink=0.8)
    ax.scatter(s[:, 0], s[:, 1], s=6, color="tab:orange", alpha=0.6, linewidths=0,
               label="samples")
    if m is not None:
        ax.scatter(m[:, 0], m[:, 1], s=60, marker="x", color="red", linewidths=1.5, label="modes")
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal")
    ax.legend(loc="upper right", markerscale=1.5)
    if title:
        ax.set_title(title)
    return _save(fig, path, who, dpi)
