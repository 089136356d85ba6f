# %% [markdown]
# # 07: Anomaly detection with reconstruction error
#
# An autoencoder trained on some data learns to reconstruct *that kind* of data well, and nothing
# else: its code and decoder only have room for what the training images have in common. So if
# we train it on "normal" examples only, an input that is unlike all of them (a new kind of
# object, a damaged image) comes back badly reconstructed, and the size of the reconstruction
# error becomes an **anomaly score**. No anomaly is needed for training: we usually do not know
# in advance what the anomalies will look like, and we rarely have many of them.
#
# Here "normal" means MNIST digits without the 6s. We train an autoencoder on them, score test
# images by their reconstruction error, and ask three questions: do anomalies score higher, how
# should we pick the threshold above which we raise an alarm, and how good is the score overall
# (the ROC curve and the area under it)?
#
# Runs in about 15 s on a 2-core CPU (full, measured with nothing else running);
# `TINYGEN_QUICK=1` runs it in about 1 s.

# %% [markdown]
# ## The idea in one formula
#
# Train an autoencoder, encoder $f$ and decoder $g$, on normal data only, by minimising the
# reconstruction loss $L(x, g(f(x)))$. Then give every image $x$ the score
#
# $$s(x) = \frac{1}{D} \sum_{i=1}^{D} \big(x_i - g(f(x))_i\big)^2,$$
#
# the mean squared error over its $D = 784$ pixels, and flag $x$ as an anomaly when
# $s(x) > \tau$ for a threshold $\tau$ that we choose. A larger $\tau$ raises fewer false alarms
# but also misses more anomalies; the ROC curve at the end shows every choice at once.

# %%
import time

import numpy as np

import tinygen as tg
from tinygen import metrics, models, plot
from tinygen.data import DataLoader
from tinygen.train import fit

from course import QUICK, figure, mnist, pick

started = time.perf_counter()
tg.manual_seed(0)
rng = np.random.default_rng(0)

# %% [markdown]
# ## Normal data and three kinds of anomaly
#
# The training set is every MNIST training digit except the 6s. At test time we score:
#
# - **normal** test digits: the test digits other than 6 (the alarm should stay quiet);
# - **digit 6**, a class the model has never seen: a new *kind* of input;
# - **noisy digits**: normal test digits with a few percent of their pixels set to black or white
#   at random (salt-and-pepper noise), as a faulty sensor might produce;
# - **shifted digits**: normal test digits moved a few pixels to the right. MNIST digits are
#   always centred, so a digit in the wrong place is something the model has not seen either.
#
# The last two are made from the normal test digits themselves, so they differ from normal
# images only by the damage.

# %%
HELD_OUT = 6  # the digit the autoencoder never sees
NOISE_LEVEL = 0.05  # fraction of the pixels set to 0 or 1 at random
SHIFT = 4  # pixels to the right

x_train_all, y_train_all = mnist("train", n=pick(None, 4000))
x_test, y_test = mnist("test", n=pick(None, 2000))

x_train = x_train_all[y_train_all != HELD_OUT]  # the model learns from normal digits only
x_normal = x_test[y_test != HELD_OUT]


def shift_right(images, pixels):
    """Move each 28 x 28 image `pixels` to the right, filling the left edge with black."""
    squares = images.reshape(-1, 28, 28)
    moved = np.zeros_like(squares)
    moved[:, :, pixels:] = squares[:, :, :-pixels]
    return moved.reshape(len(images), 784)


n_damaged = pick(1000, 300)
anomalies = {
    f"digit {HELD_OUT}": x_test[y_test == HELD_OUT],
    "noisy digits": models.corrupt(x_normal[:n_damaged], "salt_pepper", NOISE_LEVEL, rng),
    "shifted digits": shift_right(x_normal[:n_damaged], SHIFT),
}
print(f"training on {len(x_train)} normal digits (no {HELD_OUT}s)" + ("   (quick mode)" if QUICK
                                                                       else ""))
print(f"test: {len(x_normal)} normal digits; anomalies: "
      + ", ".join(f"{len(images)} {name}" for name, images in anomalies.items()))

# %% [markdown]
# ## The autoencoder, trained on normal digits only
#
# The MLP autoencoder of lesson 01: $784 \to 256 \to 32 \to 256 \to 784$ with ReLU hidden layers,
# a sigmoid output and the Bernoulli cross-entropy as its loss $L$. Nothing about it is special
# to anomaly detection: all that matters is *what it was trained on*.

# %%
model = models.mlp_autoencoder(784, hidden=(256,), code_dim=32)
optimizer = tg.optim.Adam(model.parameters(), lr=1e-3)
history = fit(model, DataLoader(x_train, batch_size=128), optimizer, epochs=pick(8, 2),
              progress=False)
print("training loss (cross-entropy per image) by epoch:",
      ", ".join(f"{loss:.1f}" for loss in history["loss"]))

# %% [markdown]
# ## The score: reconstruction error per image
#
# We reconstruct each image without recording a graph (`tg.no_grad()`) and take the mean squared
# error over its pixels. We score the normal *training* images too: they will tell us where to
# put the threshold.

# %%
def anomaly_score(images, batch_size=1000):
    """s(x) = mean over pixels of (x - g(f(x)))^2, one number per image."""
    scores = []
    with tg.no_grad():
        for start in range(0, len(images), batch_size):
            x = images[start:start + batch_size]
            reconstruction = model(tg.tensor(x)).data
            scores.append(np.mean((x - reconstruction) ** 2, axis=1))
    return np.concatenate(scores)


train_scores = anomaly_score(x_train)
normal_scores = anomaly_score(x_normal)
anomaly_scores = {name: anomaly_score(images) for name, images in anomalies.items()}

print(f"{'images':>16}  {'median score':>12}  {'90th percentile':>15}")
groups = {"normal (train)": train_scores, "normal (test)": normal_scores, **anomaly_scores}
for name, scores in groups.items():
    print(f"{name:>16}  {np.median(scores):12.4f}  {np.percentile(scores, 90):15.4f}")

# %% [markdown]
# The normal test digits score about as low as the training digits: the model has learnt
# *digits other than 6*, not the particular training images. Every kind of anomaly has a higher
# typical score, but "typical" hides the overlap; the histograms below show it (the score axis
# is logarithmic, and the dashed line is the threshold chosen next). The normal scores have two
# humps: the low one is mostly 1s, whose thin strokes leave few pixels to get wrong.

# %% [markdown]
# ## Choosing a threshold
#
# An alarm needs a threshold $\tau$. Without anomalies to tune it on, a natural choice is a
# percentile of the scores of normal data: with $\tau$ = the 99th percentile of the training
# scores, about 1 % of normal images should raise a (false) alarm. Two numbers describe the
# result:
#
# - the **false-positive rate** $\text{FPR} = P(s(x) > \tau \mid x \text{ normal})$, measured on
#   the normal *test* digits (not the ones that set $\tau$);
# - the **detection rate** (true-positive rate)
#   $\text{TPR} = P(s(x) > \tau \mid x \text{ anomalous})$, for each kind of anomaly.

# %%
def rates(threshold):
    """(false-positive rate on normal test digits, {kind: detection rate}) at this threshold."""
    false_positive_rate = np.mean(normal_scores > threshold)
    detection = {name: np.mean(scores > threshold) for name, scores in anomaly_scores.items()}
    return false_positive_rate, detection


threshold = np.percentile(train_scores, 99)
false_positive_rate, detection = rates(threshold)
print(f"threshold tau = 99th percentile of the training scores = {threshold:.4f}")
print(f"  false alarms on normal test digits: {100 * false_positive_rate:.1f} %")
for name, rate in detection.items():
    print(f"  {name} detected: {100 * rate:.1f} %")

# %% [markdown]
# The false-alarm rate on new normal digits comes out close to the 1 % we asked for, since they
# score like the training digits. The damaged images are caught almost always, or mostly: noise
# and shifts create errors the model cannot explain away. The new digit is harder: many 6s are
# made of strokes the model knows well (the loop of a 0, the upper stroke of a 5) and come back
# reconstructed well enough to pass.

# %% [markdown]
# A lower percentile catches more anomalies at the price of more false alarms. Which trade-off
# is right depends on what an alarm costs (a person checking an image, a machine stopped) and
# what a missed anomaly costs.

# %%
print(f"{'percentile':>10}  {'tau':>7}  {'FPR':>6}  " + "  ".join(f"{name:>15}" for name in
                                                                anomaly_scores))
for percentile in (90, 95, 99, 99.9):
    tau = np.percentile(train_scores, percentile)
    fpr, detected = rates(tau)
    print(f"{percentile:>10}  {tau:7.4f}  {100 * fpr:5.1f}%  "
          + "  ".join(f"{100 * rate:14.1f}%" for rate in detected.values()))

# %%
fig = plot.new_figure(7.0, 4.0)
ax = fig.add_subplot()
bins = np.geomspace(min(s.min() for s in groups.values()),
                    max(s.max() for s in groups.values()), 60)
ax.hist(normal_scores, bins=bins, density=True, color="grey", alpha=0.5, label="normal (test)")
for name, scores in anomaly_scores.items():
    ax.hist(scores, bins=bins, density=True, histtype="step", linewidth=1.8, label=name)
ax.axvline(threshold, color="black", linestyle="--", label="threshold (99th pct of train)")
ax.set_xscale("log")
ax.set_xlabel("anomaly score s(x): mean squared reconstruction error")
ax.set_ylabel("density")
ax.set_title(f"Autoencoder trained without {HELD_OUT}s: scores of test images")
ax.legend()
plot.save(fig, figure("07_score_histograms.png"))

# %% [markdown]
# ## The ROC curve and its area
#
# A threshold is one point of a trade-off; the **ROC curve** draws all of them: as $\tau$ falls
# from $+\infty$ to $-\infty$ we plot the detection rate $\text{TPR}(\tau)$ against the
# false-positive rate $\text{FPR}(\tau)$. It runs from $(0, 0)$ (no alarm at all) to $(1, 1)$
# (everything is an alarm). A useless score follows the diagonal; a perfect one goes straight
# up to $(0, 1)$.
#
# Its area, the **AUROC**, sums the curve up in one number that does not depend on any
# threshold. It has a neat meaning: the probability that a random anomaly scores higher than a
# random normal image,
#
# $$\text{AUROC} = P\big(s(x_\text{anomaly}) > s(x_\text{normal})\big),$$
#
# so 0.5 is chance and 1 is a perfect ranking. We build the curve by hand (sort the scores from
# high to low and lower $\tau$ past them one at a time), take its area with the trapezoid rule,
# and check it against `tinygen.metrics.auroc`, which counts the pairs instead.

# %%
def roc_curve(scores, is_anomaly):
    """(FPR, TPR) at every threshold, from 'nothing flagged' to 'everything flagged'."""
    order = np.argsort(-scores)  # highest score first: the first to be flagged as tau falls
    flagged_anomalies = np.cumsum(is_anomaly[order])
    flagged_normals = np.cumsum(~is_anomaly[order])
    tpr = np.concatenate([[0.0], flagged_anomalies / is_anomaly.sum()])
    fpr = np.concatenate([[0.0], flagged_normals / (~is_anomaly).sum()])
    return fpr, tpr


def area_under(fpr, tpr):
    """The trapezoid rule: sum of (width x mean height) of the strips under the curve."""
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))


def normal_versus(scores_of_anomalies, scores_of_normals=normal_scores):
    """All scores in one array, and a label: True for an anomaly, False for a normal image."""
    scores = np.concatenate([scores_of_normals, scores_of_anomalies])
    is_anomaly = np.concatenate([np.zeros(len(scores_of_normals), bool),
                                 np.ones(len(scores_of_anomalies), bool)])
    return scores, is_anomaly


print(f"{'anomaly':>16}  {'AUROC (trapezoids)':>18}  {'metrics.auroc':>13}")
curves = {}
for name, scores_of_anomalies in anomaly_scores.items():
    scores, is_anomaly = normal_versus(scores_of_anomalies)
    curves[name] = roc_curve(scores, is_anomaly)
    print(f"{name:>16}  {area_under(*curves[name]):18.4f}  "
          f"{metrics.auroc(scores, is_anomaly):13.4f}")

# %% [markdown]
# Is the autoencoder doing anything clever, or would a trivial score do as well? A sanity check
# is a **baseline**: here the amount of ink in the image, `metrics.ink` (the mean pixel value).
# If 6s simply had more ink than other digits, ink alone would find them.

# %%
ink_scores, is_six = normal_versus(metrics.ink(anomalies[f"digit {HELD_OUT}"]),
                                   metrics.ink(x_normal))
ink_auroc = metrics.auroc(ink_scores, is_six)
print(f"baseline: ink as the score for digit {HELD_OUT}: AUROC {ink_auroc:.4f}")

fig = plot.new_figure(5.5, 5.0)
ax = fig.add_subplot()
for i, (name, (fpr, tpr)) in enumerate(curves.items()):
    ax.plot(fpr, tpr, color=f"C{i}", label=f"{name} (AUROC {area_under(fpr, tpr):.3f})")
    ax.plot(false_positive_rate, detection[name], "o", color=f"C{i}")
ax.plot(*roc_curve(ink_scores, is_six), ":", color="C0",
        label=f"ink baseline, digit {HELD_OUT} (AUROC {ink_auroc:.3f})")
ax.plot([0, 1], [0, 1], "--", color="grey", linewidth=1, label="chance")
ax.set_xlabel("false-positive rate (normal digits flagged)")
ax.set_ylabel("detection rate (anomalies flagged)")
ax.set_title("ROC curves; dots: the 99th-percentile threshold")
ax.set_aspect("equal")
ax.legend(loc="lower right", fontsize=8)
plot.save(fig, figure("07_roc.png"))

# %% [markdown]
# ## The most and least anomalous test images
#
# Numbers aside, what does the model find strange? We score the whole test split (every digit,
# 6s included, undamaged) and look at the two ends of the ranking: the top two rows below are the
# 16 highest scores, the bottom two rows the 16 lowest, each titled with its label and score.

# %%
test_scores = anomaly_score(x_test)
ranking = np.argsort(-test_scores)  # most anomalous first
shown = np.concatenate([ranking[:16], ranking[-16:]])
titles = [f"{y_test[i]}: {test_scores[i]:.3f}" for i in shown]
plot.image_grid(x_test[shown], figure("07_most_anomalous.png"), nrow=8, titles=titles)
among_top = np.mean(y_test[ranking[:100]] == HELD_OUT)
print(f"6s are {100 * np.mean(y_test == HELD_OUT):.0f} % of the test split, "
      f"{100 * among_top:.0f} % of its 100 most anomalous images")
print("labels of the 16 least anomalous:", " ".join(str(y) for y in y_test[ranking[-16:]]))

# %% [markdown]
# The high end holds 6s and also badly written digits of the normal classes (a score cannot tell
# "new class" from "odd example of an old class"; both are unlike the training data). The low
# end is dominated by 1s: a thin stroke has few pixels to get wrong, so the mean squared error
# of an easy, *normal* class is small whatever the model has learnt. Reconstruction error
# mixes "how unusual" with "how much ink", which is worth remembering when a held-out class
# is thin (see the exercises).
#
# Finally, the reconstructions themselves show *why* the anomalies score high: the model can
# only draw what it knows. A 6 comes back blurred and bent towards the digits it has seen (the
# better the resemblance, the lower its score), the noise is wiped away (so the error is the
# noise itself), and a shifted digit is pulled back towards the familiar, centred shapes. Each
# image is titled with its kind and score; the row under it is its reconstruction.

# %%
examples = {"normal": x_normal[:6], str(HELD_OUT): anomalies[f"digit {HELD_OUT}"][:6],
            "noisy": anomalies["noisy digits"][:6], "shifted": anomalies["shifted digits"][:6]}
rows, titles = [], []
for name, images in examples.items():
    with tg.no_grad():
        reconstructions = model(tg.tensor(images)).data
    rows += [images, reconstructions]
    titles += [f"{name} {s:.3f}" for s in anomaly_score(images)] + ["reconstructed"] * 6
plot.image_grid(np.concatenate(rows), figure("07_reconstructions.png"), nrow=6, titles=titles)
print(f"done in {time.perf_counter() - started:.1f} s")

# %% [markdown]
# ## Try this
#
# 1. Hold out another digit: set `HELD_OUT = 1`. Ones are thin and easy to reconstruct, so they
#    score *lower* than normal digits: look for an AUROC below 0.5, and a 1-only low end of the
#    histogram. Then try `HELD_OUT = 7` or `9`, digits close to ones the model knows.
# 2. Change the model's capacity: `code_dim=32` in `models.mlp_autoencoder` to 4 or 128. A code
#    too small reconstructs even normal digits badly; a code too large reconstructs everything,
#    6s included. Watch the AUROC of the held-out digit.
# 3. Make the damage milder: `NOISE_LEVEL = 0.01` or `SHIFT = 2`. Where do the histograms start
#    to overlap, and what happens to the detection rate at the 99th-percentile threshold?
# 4. Score with the cross-entropy, the loss the model was trained on, instead of the squared
#    error in `anomaly_score` (`-(x log r + (1 - x) log(1 - r))` summed over pixels, with `r`
#    clipped away from 0 and 1). Does the ranking of the three kinds of anomaly change?
# 5. The one-class setting: train on a single digit and treat every other digit as an anomaly.
#    Set `x_train = x_train_all[y_train_all == 0]`, `x_normal = x_test[y_test == 0]` and put
#    `x_test[y_test != 0]` in `anomalies`. Is it easier or harder than finding one class among
#    nine?
