"""`tinygen train NAME`: train a recipe on MNIST, with checkpoints, exact resume (--resume) and
the pictures and metrics of the run."""
import os
import shlex
import time

from .. import __version__, backend, devices, models, plot
from ..checkpoint import load
from ..data.loader import DataLoader
from ..data.transforms import flatten
from ..interrupt import TrainingInterrupted
from ..models.vae import bits_per_dim
from ..optim import Adam
from ..random import manual_seed
from ..train import fit
from .common import grid_value_range, mnist_inputs, reconstruction_grid, usable_device, write_json
from .errors import CommandError, Interrupted
from .recipes import recipe_for


def training_loader(recipe, data, quick, batch_size, seed, device=None):
    """The training images in mini-batches, with new noise for every batch where the recipe asks,
    put on device."""
    if recipe.train_transform is None:
        x_train = mnist_inputs("train", data, quick, recipe.pixels)
        return DataLoader(x_train, batch_size, shuffle=True, seed=seed, device=device)
    x_train = mnist_inputs("train", data, quick, flatten)  # uint8 rows, noised batch by batch
    return DataLoader(x_train, batch_size, shuffle=True, seed=seed,
                      transform=recipe.train_transform(seed), device=device)


def _add_bits_per_dim(history, dim):
    """history["val_bits_per_dim"]: the test -ELBO of dequantised 256-level pixels in bits/dim."""
    history["val_bits_per_dim"] = [bits_per_dim(loss, dim) for loss in history["val_loss"]]
    print(f"test -ELBO {history['val_loss'][-1]:.1f} nats per image = "
          f"{history['val_bits_per_dim'][-1]:.3f} bits/dim "
          f"((-ELBO / {dim} + log 256) / log 2; a uniform model: 8)")


# What `tinygen train` adds to fit's checkpoint: "recipe", "run" (the settings below) and this.
RUN_FORMAT = 1


def _new_run_settings(args, recipe, quick):
    """The settings of a new run: the options given, else the recipe's."""
    return {"epochs": args.epochs or (1 if quick else recipe.epochs),
            "batch_size": args.batch_size or recipe.batch_size, "lr": args.lr or recipe.lr,
            # --lr sets every rate of the run, a GAN's two players' alike
            "lr_discriminator": None if args.lr else recipe.lr_discriminator,
            "seed": 0 if args.seed is None else args.seed, "likelihood": recipe.likelihood,
            "data": args.data, "quick": quick}


def _resumed_run_settings(args, quick):
    """(settings, state): the settings stored in the --resume checkpoint (only --epochs may
    change them), and the checkpoint itself."""
    path = args.resume
    try:
        state = load(path)
    except (OSError, ValueError) as error:
        raise CommandError(f"--resume: {error}") from None
    if not isinstance(state, dict) or "recipe" not in state or "run" not in state:
        raise CommandError(f"--resume {path}: not a checkpoint of `tinygen train` (it names no "
                           "recipe and no run settings; those of older versions cannot resume)")
    if state["recipe"] != args.model:
        raise CommandError(f"--resume {path}: a checkpoint of the '{state['recipe']}' recipe, "
                           f"not '{args.model}'")
    if state.get("run_format", 1) > RUN_FORMAT:
        raise CommandError(f"--resume {path}: written by a newer tinygen (run format "
                           f"{state['run_format']}; this one reads up to {RUN_FORMAT})")
    settings = dict(state["run"])
    given = {"batch_size": args.batch_size, "lr": args.lr, "seed": args.seed,
             "likelihood": args.likelihood, "data": args.data, "quick": quick or None}
    for name, value in given.items():
        if value is not None and value != settings[name]:
            raise CommandError(f"--resume goes on with the run's own settings, and it was started "
                               f"with {name} {settings[name]!r}, not {value!r} (only --epochs "
                               "may change)")
    if args.epochs:
        settings["epochs"] = args.epochs
    return settings, state


def _resume_command(model_name, checkpoint, device):
    """The command that goes on from checkpoint, on the device the run was on."""
    where = "" if device == devices.CPU else f" --device {device.type}"
    return f"tinygen train {model_name} --resume {shlex.quote(checkpoint)}{where}"


def _where_it_runs(device):
    """'on cpu, backend numba' or 'on cuda:0 (CuPy arrays, cuda kernels)', for the first line."""
    if device == devices.CPU:
        return f"on cpu, backend {backend.current()}"
    lib = devices.library(device.type)
    return f"on {device} ({lib.name} arrays, {lib.kernels} kernels)"


def _make_folder(out):
    """The run's folder, made if it does not exist; CommandError if the name is taken by a file."""
    if os.path.exists(out) and not os.path.isdir(out):
        raise CommandError(f"--out {out}: a file of that name exists; give a folder")
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as error:  # no permission, a file where a parent folder should be
        raise CommandError(f"--out {out}: cannot make the folder ({error.strerror or error})") \
            from None


def run(args):
    device = usable_device(args.device)
    quick = args.quick or os.environ.get("TINYGEN_QUICK") == "1"
    if args.resume:
        settings, resumed_state = _resumed_run_settings(args, quick)
        out = args.out or os.path.dirname(args.resume) or "."
    else:
        settings = _new_run_settings(args, recipe_for(args.model, args.likelihood), quick)
        out = args.out or os.path.join("runs", f"{args.model}-{time.strftime('%Y%m%d-%H%M%S')}")
    recipe = recipe_for(args.model, settings["likelihood"])
    if args.backend:
        backend.use(args.backend)
    manual_seed(settings["seed"])
    _make_folder(out)
    loader = training_loader(recipe, settings["data"], settings["quick"], settings["batch_size"],
                              settings["seed"], device)
    model = recipe.build().to(device)  # before its optimizers are made, as in PyTorch
    if recipe.adversarial:
        optimizer = models.gan_optimizers(model, lr=settings["lr"],
                                          lr_discriminator=settings.get("lr_discriminator"))
        val_loader = x_test = None
    else:
        optimizer = Adam(model.parameters(), lr=settings["lr"])
        x_test = mnist_inputs("test", settings["data"], settings["quick"], recipe.pixels)
        val_loader = DataLoader(x_test, settings["batch_size"], shuffle=False, device=device)
    epochs = settings["epochs"]
    checkpoint = os.path.join(out, "checkpoint.npz")
    resume_with = _resume_command(args.model, checkpoint, device)
    metrics_path = os.path.join(out, "metrics.json")
    print(f"tinygen train {args.model}: {recipe.description}; {loader.n_samples} training images, "
          f"{epochs} epochs, {_where_it_runs(device)}, writing to {out}"
          + (f"; resuming from {args.resume}" if args.resume else ""))
    # A GAN has no loss to watch fall: the same noise through G after every epoch shows progress.
    grids = watch = None
    if recipe.adversarial:
        grids = plot.epoch_grids(os.path.join(out, "epochs"))
        watch = model.sample_watcher(grids)
    extra = {"recipe": args.model, "tinygen": __version__, "run_format": RUN_FORMAT,
             "run": settings}
    if recipe.likelihood is not None:
        extra["likelihood"] = recipe.likelihood  # so that `tinygen sample` rebuilds this decoder

    def write_metrics(epochs_done, step, history):
        """metrics.json, right after each checkpoint: how far the run got, and its history."""
        write_json({"model": args.model, "likelihood": recipe.likelihood, "epochs": epochs,
                     "epochs_done": epochs_done, "step": step, "history": history}, metrics_path)

    if args.resume:  # after a crash between the two renames, metrics.json catches up first
        write_metrics(resumed_state["epoch"], resumed_state.get("step", 0),
                      resumed_state["history"])
    try:
        history = fit(model, loader, optimizer, epochs, val_loader=val_loader,
                      checkpoint=checkpoint, resume=args.resume, progress=args.progress,
                      epoch_lines=True, on_epoch_end=watch, checkpoint_extra=extra,
                      checkpoint_every=args.checkpoint_every, on_checkpoint=write_metrics)
    except TrainingInterrupted as stop:
        raise Interrupted(f"{stop}. Resume with: {resume_with}")
    except KeyboardInterrupt:  # the second Ctrl-C: stopped at once
        if os.path.exists(checkpoint):
            raise Interrupted(f"stopped at once; the last checkpoint, {checkpoint}, is whole. "
                              f"Resume with: {resume_with}") from None
        raise Interrupted("stopped at once, before the first checkpoint: nothing to resume")
    except ValueError as error:  # a checkpoint that does not fit the model, a newer format
        if args.resume is None:
            raise
        raise CommandError(f"--resume {args.resume}: {error}") from None
    except OSError as error:  # a full disk, a folder gone: the checkpoint could not be written
        kept = (f"the last checkpoint, {checkpoint}, is whole. Resume with: {resume_with}"
                if os.path.exists(checkpoint) else "no checkpoint was written")
        raise CommandError(f"{error}; {kept}") from None
    if recipe.likelihood == "gaussian":  # a density of dequantised pixels: bits/dim make sense
        _add_bits_per_dim(history, x_test.shape[1])
    write_metrics(len(history.get("seconds", [])), 0, history)
    plot.curves({k: v for k, v in history.items() if k != "seconds"},
                os.path.join(out, "curves.png"))
    model.eval()
    written = ["checkpoint.npz", "metrics.json", "curves.png"]
    if x_test is not None:
        reconstruction_grid(model, x_test, os.path.join(out, "reconstructions.png"),
                             grid_value_range(recipe))
        written.append("reconstructions.png")
    if hasattr(model, "sample"):
        plot.image_grid(model.sample(64).cpu().numpy(), os.path.join(out, "samples.png"),
                        value_range=grid_value_range(recipe))
        written.append("samples.png")
    if grids is not None:
        written.append(f"epochs/samples_epoch_NNN.png (fixed noise, {len(grids.paths)} epochs)")
    print(f"done: {', '.join(written)} in {out}")
