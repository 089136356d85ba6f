"""The DCGAN recipe's variants in PyTorch, scored with tinygen's metric: a fast screen of the
techniques (on a GPU, seconds per epoch) and the torch side of the issue's check that a recipe's
gain comes from the recipe, not from tinygen.

    TINYGEN_DATA=/path/to/mnist python bench/dcgan_recipe_torch.py --device cuda --jobs 6 \
        --variants baseline ema smooth --epochs 8 --score-at 4 8 --seeds 0 1

Each (variant, seed) trains in its own process (--jobs at a time, one CPU thread each) exactly
as models.GAN.train_step does: D on m real digits (target 1, or real_label) and m fakes from fresh
z ~ N(0, I) (target 0), one Adam step; then G through the updated D on fresh z, one Adam step.
The architecture is tinygen.models.dcgan's (dcgan_generator / dcgan_discriminator), initialised
as dcgan_init does; the variants are bench/dcgan_recipe.py's techniques (the same names):
    ema / emawarm   G's weights averaged, decay 0.999 (emawarm: min(0.999, (1 + t) / (10 + t)))
    smooth          real_label 0.9            ttur     D 4e-4, G 1e-4
    sn              spectral norm in D, no BN dropout  Dropout(0.3) after D's LeakyReLUs
    wide            G with twice the channels lr2x     both learning rates doubled (4e-4)
    lr4x            both learning rates 8e-4 (lr2x+lr2x)
    b32 / b128      batch 32 / 128 (the step count changes, epochs stay)
    infolr          InfoGAN's rates: G 1e-3, D 2e-4
    deep / infogan  the architecture (models.dcgan's architecture=...; default classic): a third,
                    stride-1 conv on each side and 256 channels, or a fully connected hidden
                    layer of 1,024 on each side (InfoGAN's MNIST network)
A run lasts --epochs, or, with --minutes, the steps tinygen takes in that time: --minutes 5 10 15
--ms-per-step 685 trains 1,313 steps (15 minutes at tinygen's 685 ms per step, measured by
bench/dcgan_recipe.py --steps) and scores after 437, 875 and 1,313, a time-quality curve in
tinygen's minutes.
At each --score-at epoch (or --minutes mark), N samples (--n) from the eval-mode G are scored
against the MNIST test set: FID (tinygen.mnist_classifier.fid), the MNIST score, and the rarest
digit's share. Three ways of setting G's batch norm statistics for sampling are scored side by
side, since a moving average of the weights does not come with matching running statistics:
    live    the trained G with its running statistics (what tinygen samples from without EMA)
    ema     the averaged G with the live G's running statistics copied (tinygen.ema's rule)
    ema+bn  the averaged G with its statistics recomputed: 20 batches of 500 z in train mode,
            cumulative averages (torch.optim.swa_utils.update_bn's rule)
TINYGEN_QUICK=1: the bundled digits, 4 steps, N = 200, batch norm recomputed on 2 x 50 z, two
jobs: a smoke test.
"""
import argparse
import copy
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed

import mnist_inputs
import numpy as np

from tinygen import mnist_classifier as mc
from tinygen.data import load_mnist

QUICK = os.environ.get("TINYGEN_QUICK") == "1"
LATENT = 100
TECHNIQUES = ("ema", "emawarm", "smooth", "ttur", "sn", "dropout", "wide", "lr2x", "lr4x", "b32",
              "b128", "infolr", "deep", "infogan")


def options(variant):
    """The settings of a variant such as "emawarm+smooth"."""
    chosen = dict(ema=None, warmup=False, real_label=1.0, lr_d=2e-4, lr_g=2e-4, sn=False,
                  dropout=0.0, width=1.0, batch=64, architecture="classic")
    for name in ([] if variant == "baseline" else variant.split("+")):
        if name not in TECHNIQUES:
            raise SystemExit(f"dcgan_recipe_torch: unknown technique {name!r}; "
                             f"choose from {', '.join(TECHNIQUES)}")
        if name in ("ema", "emawarm"):
            chosen.update(ema=0.999, warmup=name == "emawarm")
        elif name == "smooth":
            chosen["real_label"] = 0.9
        elif name == "ttur":
            chosen.update(lr_d=4e-4, lr_g=1e-4)
        elif name == "infolr":
            chosen.update(lr_d=2e-4, lr_g=1e-3)
        elif name in ("deep", "infogan"):
            chosen["architecture"] = name
        elif name in ("lr2x", "lr4x"):  # stacked, lr2x+lr2x is lr4x
            factor = 2 if name == "lr2x" else 4
            chosen.update(lr_d=factor * chosen["lr_d"], lr_g=factor * chosen["lr_g"])
        elif name == "sn":
            chosen["sn"] = True
        elif name == "dropout":
            chosen["dropout"] = 0.3
        elif name == "wide":
            chosen["width"] = 2.0
        else:
            chosen["batch"] = int(name[1:])
    return chosen


def build(torch, opts):
    """G and D as tinygen.models.dcgan_generator / dcgan_discriminator build them."""
    nn = torch.nn
    architecture = opts["architecture"]
    top = round((256 if architecture == "deep" else 128) * opts["width"])
    narrow = round(64 * opts["width"])
    if architecture == "infogan":
        hidden = round(1024 * opts["width"])
        g_layers = [nn.Linear(LATENT, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
                    nn.Linear(hidden, top * 49)]
    else:
        g_layers = [nn.Linear(LATENT, top * 49)]
    g_layers += [nn.BatchNorm1d(top * 49), nn.ReLU(), nn.Unflatten(1, (top, 7, 7))]
    if architecture == "deep":
        g_layers += [nn.ConvTranspose2d(top, top // 2, 3, 1, 1), nn.BatchNorm2d(top // 2),
                     nn.ReLU()]
        top //= 2
    G = nn.Sequential(*g_layers, nn.ConvTranspose2d(top, narrow, 4, 2, 1), nn.BatchNorm2d(narrow),
                      nn.ReLU(), nn.ConvTranspose2d(narrow, 1, 4, 2, 1), nn.Tanh())

    def weighted(layer):
        return nn.utils.spectral_norm(layer) if opts["sn"] else layer

    def dropout():
        return [nn.Dropout(opts["dropout"])] if opts["dropout"] else []

    def normalised_activation(features, batch_norm):
        norm = [] if opts["sn"] else [batch_norm(features)]
        return norm + [nn.LeakyReLU(0.2)] + dropout()

    layers = [weighted(nn.Conv2d(1, 64, 4, 2, 1)), nn.LeakyReLU(0.2), *dropout(),
              weighted(nn.Conv2d(64, 128, 4, 2, 1)), *normalised_activation(128, nn.BatchNorm2d)]
    features = 128 * 49
    if architecture == "deep":
        layers += [weighted(nn.Conv2d(128, 256, 3, 1, 1)),
                   *normalised_activation(256, nn.BatchNorm2d)]
        features = 256 * 49
    layers.append(nn.Flatten())
    if architecture == "infogan":
        layers += [weighted(nn.Linear(features, 1024)),
                   *normalised_activation(1024, nn.BatchNorm1d)]
        features = 1024
    D = nn.Sequential(*layers, weighted(nn.Linear(features, 1)))
    for module in [*G.modules(), *D.modules()]:  # tinygen.models.dcgan_init
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(getattr(module, "weight_orig", module.weight), 0.0, 0.02)
            nn.init.zeros_(module.bias)
        elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.normal_(module.weight, 1.0, 0.02)
            nn.init.zeros_(module.bias)
    return G, D


def recompute_bn(torch, G, device, seed):
    """G's batch norm statistics recomputed as cumulative averages over 20 batches of 500 z
    (TINYGEN_QUICK=1: 2 batches of 50, a smoke test)."""
    batches, size = (2, 50) if QUICK else (20, 500)
    momenta = {}
    for module in G.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            momenta[module] = module.momentum
            module.momentum = None
    generator = torch.Generator(device=device).manual_seed(seed)
    G.train()
    with torch.no_grad():
        for _ in range(batches):
            G(torch.randn(size, LATENT, device=device, generator=generator))
    for module, momentum in momenta.items():
        module.momentum = momentum
    G.eval()


def torch_classifier(torch, device):
    """tinygen's shipped MNIST classifier (mnist_classifier.load_classifier) rebuilt in torch.nn
    with the same weights, so that scoring runs where G runs: -> a function from images in
    [-1, 1] (N, 1, 28, 28) to (features (N, 128), class probabilities (N, 10)) as float64."""
    nn = torch.nn
    body = nn.Sequential(
        nn.Unflatten(1, (1, 28, 28)), nn.Conv2d(1, 32, 3, 1, 1), nn.ReLU(),
        nn.Conv2d(32, 32, 4, 2, 1), nn.ReLU(), nn.Conv2d(32, 64, 4, 2, 1), nn.ReLU(),
        nn.Conv2d(64, 32, 3, 2, 1), nn.ReLU(), nn.Flatten(), nn.Linear(512, 128), nn.ReLU())
    model = nn.ModuleDict({"body": body, "head": nn.Linear(128, 10)})
    state = {key: torch.from_numpy(np.array(value.data))
             for key, value in mc.load_classifier().state_dict().items()}
    model.load_state_dict(state)  # strict: the same layers in the same places
    model.to(device).eval()

    def outputs(images):
        with torch.no_grad():
            x = ((images + 1) / 2).reshape(len(images), 784)
            x = (x - mc.PIXEL_MEAN) / mc.PIXEL_STD  # as MNISTClassifier.features
            features = model["body"](x)
            probs = torch.softmax(model["head"](features).double(), dim=1)
        return features.double().cpu().numpy(), probs.cpu().numpy()
    return outputs


def check_classifier(root):
    """The torch copy of the classifier gives tinygen's features and MNIST score (asserted)."""
    import torch
    test = load_mnist("test", subset="bundled" if QUICK else None, root=root)[0][:500]
    features, probs = torch_classifier(torch, "cpu")(
        torch.from_numpy(test.astype(np.float32) / 127.5 - 1))
    expected = mc.features(test)
    gap = float(np.abs(features - expected).max())
    assert gap <= 1e-4 * float(np.abs(expected).max()), f"torch classifier features differ: {gap}"
    score, expected_score = mc.mnist_score_from_probs(probs)[0], mc.mnist_score(test)[0]
    assert abs(score - expected_score) < 1e-4, (score, expected_score)
    print(f"check: the torch copy of tinygen's classifier gives its features (max |diff| "
          f"{gap:.1e}) and MNIST score ({score:.4f}) on 500 test digits")


def samples(torch, G, n, device, seed):
    G.eval()
    generator = torch.Generator(device=device).manual_seed(seed)
    with torch.no_grad():
        chunks = [G(torch.randn(min(1000, n - s), LATENT, device=device, generator=generator))
                  for s in range(0, n, 1000)]
    return torch.cat(chunks)


def score_points(epochs, score_at, minutes, ms_per_step, steps_per_epoch):
    """{step: label}: when to score, after epochs or after tinygen-minutes of steps."""
    if minutes:
        return {max(1, round(m * 60000 / ms_per_step)): f"{m:g} min" for m in minutes}
    return {e * steps_per_epoch: f"epoch {e}" for e in score_at}


def rarest_share(probs):
    """The rarest digit's share of the samples (by the classifier's most likely class), over the
    1/10 a flat histogram gives: 1.0 is flat, 0 means a digit is missing."""
    return mc.class_counts(probs).min() / (len(probs) / 10)


def run(job):
    """Train one (variant, seed); returns its scores at each scoring point."""
    variant, seed, epochs, score_at, n, device, root, max_steps, minutes, ms_per_step = job
    import torch
    torch.set_num_threads(1)
    opts = options(variant)
    torch.manual_seed(seed)
    unit = mnist_inputs.load("train", root, 512 if QUICK else None)[0]
    data = torch.from_numpy(unit * 2 - 1).reshape(-1, 1, 28, 28).to(device)
    test = load_mnist("test", subset="bundled")[0][:1000] if QUICK else \
        load_mnist("test", root=root)[0]
    classify = torch_classifier(torch, device)
    test_features = classify(torch.from_numpy(test.astype(np.float32) / 127.5 - 1).to(device))[0]
    G, D = build(torch, opts)
    G.to(device)
    D.to(device)
    ema = None
    if opts["ema"]:
        ema = copy.deepcopy(G)
        ema.requires_grad_(False)
    betas = (0.5, 0.999)
    opt_g = torch.optim.Adam(G.parameters(), lr=opts["lr_g"], betas=betas)
    opt_d = torch.optim.Adam(D.parameters(), lr=opts["lr_d"], betas=betas)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    batch, updates, seconds, rows = opts["batch"], 0, 0.0, []
    steps_per_epoch = len(data) // batch if max_steps is None else max_steps
    points = score_points(epochs, score_at, minutes, ms_per_step, steps_per_epoch)
    order = torch.Generator(device="cpu").manual_seed(seed)
    while updates < max(points):
        started = time.perf_counter()
        G.train()
        D.train()
        permutation = torch.randperm(len(data), generator=order).to(device)
        for step in range(steps_per_epoch):
            real = data[permutation[step * batch:(step + 1) * batch]]
            m = len(real)
            with torch.no_grad():
                fake = G(torch.randn(m, LATENT, device=device))
            real_logits, fake_logits = D(real), D(fake)
            loss_d = bce(real_logits, torch.full_like(real_logits, opts["real_label"])) \
                + bce(fake_logits, torch.zeros_like(fake_logits))
            opt_d.zero_grad()
            loss_d.backward()
            opt_d.step()
            D.requires_grad_(False)
            logits = D(G(torch.randn(m, LATENT, device=device)))
            loss_g = bce(logits, torch.ones_like(logits))
            opt_g.zero_grad()
            loss_g.backward()
            opt_g.step()
            D.requires_grad_(True)
            if ema is not None:  # tinygen.ema.ExponentialMovingAverage.update
                decay = 0.0 if updates == 0 else opts["ema"]
                if opts["warmup"]:
                    decay = min(decay, (1 + updates) / (10 + updates))
                with torch.no_grad():
                    for a, w in zip(ema.parameters(), G.parameters()):
                        a.mul_(decay).add_(w, alpha=1 - decay)
                    for a, w in zip(ema.buffers(), G.buffers()):
                        a.copy_(w)
            updates += 1
            if updates in points or updates == max(points):
                break
        if device == "cuda":
            torch.cuda.synchronize()
        seconds += time.perf_counter() - started
        if updates not in points:
            continue
        models = {"live": G}
        if ema is not None:
            models["ema"] = ema
            rebuilt = copy.deepcopy(ema)
            recompute_bn(torch, rebuilt, device, seed + 7)
            models["ema+bn"] = rebuilt
        for kind, model in models.items():
            images = samples(torch, model, n, device, seed + 1000)
            features, probs = classify(images)
            fid = mc.fid_from_features(features, test_features)
            score = mc.mnist_score_from_probs(probs)[0]
            rows.append((variant, seed, points[updates], updates, kind, fid, score,
                         rarest_share(probs), seconds))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", default=["baseline", "emawarm"])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--score-at", type=int, nargs="+", default=None,
                        help="epochs after which to score (default: the last)")
    parser.add_argument("--minutes", type=float, nargs="+", default=None,
                        help="instead of epochs: train and score at these tinygen-minutes")
    parser.add_argument("--ms-per-step", type=float, default=None,
                        help="tinygen's milliseconds per step of the variants (with --minutes)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--root", default=None)
    args = parser.parse_args()
    for variant in args.variants:
        options(variant)
    if args.minutes and not args.ms_per_step:
        raise SystemExit("dcgan_recipe_torch: --minutes needs --ms-per-step (tinygen's time per "
                         "step, from bench/dcgan_recipe.py --steps)")
    epochs = 1 if QUICK else args.epochs
    score_at = set(args.score_at or [epochs]) & set(range(1, epochs + 1)) or {epochs}
    minutes = args.minutes
    if QUICK and minutes:  # 4 steps a minute: a smoke test of the time-budget path
        minutes, args.ms_per_step = minutes[:2], 15000
    n = 200 if QUICK else args.n
    jobs = [(v, s, epochs, score_at, n, args.device, args.root, 4 if QUICK else None, minutes,
             args.ms_per_step) for s in args.seeds for v in args.variants]
    when = (f"{minutes} tinygen-minutes at {args.ms_per_step:g} ms per step" if minutes
            else f"{epochs} epochs, scored at {sorted(score_at)}")
    print(f"torch DCGAN recipe screen: {len(jobs)} runs, {when}, N = {n}, device {args.device}, "
          f"{args.jobs} at a time", flush=True)
    check_classifier(args.root)
    import multiprocessing
    context = multiprocessing.get_context("spawn")
    rows = []
    with ProcessPoolExecutor(max_workers=2 if QUICK else args.jobs, mp_context=context) as pool:
        for done in as_completed([pool.submit(run, job) for job in jobs]):
            result = done.result()
            rows += result
            for row in result:
                print("  {:28s} seed {} {:>8s} ({:5d} steps) {:7s} FID {:7.1f} MNIST score "
                      "{:5.2f} rarest digit {:4.2f}  {:6.1f} s".format(*row), flush=True)
    print(f"\n{'variant':28s} {'seed':>4s} {'at':>8s} {'G':7s} {'FID':>7s} {'score':>6s} "
          f"{'rarest':>6s}")
    for variant, seed, at, _, kind, fid, score, rarest, _ in sorted(rows, key=lambda r: r[5]):
        print(f"{variant:28s} {seed:4d} {at:>8s} {kind:7s} {fid:7.1f} {score:6.2f} {rarest:6.2f}")


if __name__ == "__main__":
    main()
