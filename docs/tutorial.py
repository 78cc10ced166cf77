# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # A CNN from scratch, in five short steps
#
# This notebook walks through `numpy_cnn` for someone who knows a little NumPy:
#
# 1. build a convolution layer and see what shapes come out;
# 2. write a backward pass by hand and prove it with finite differences;
# 3. look inside im2col, the trick that turns a convolution into one matrix multiply;
# 4. train the paper's network for a few epochs on a small generated dataset;
# 5. look at what it learnt: its first filters and a saliency map.
#
# It runs top to bottom in well under a minute (13-30 s on a 2-core machine). Open it with Jupyter
# (`pip install jupytext`, then open `docs/tutorial.py` as a notebook), or turn it into
# an `.ipynb` with `jupytext --to notebook docs/tutorial.py`. Start Jupyter from the
# repository root, with `numpy_cnn` installed (`pip install -e .`).
#
# The very first run also compiles the fast numba kernels (a minute or two, once);
# later runs load them from numba's cache.

# %%
# One BLAS thread, as the trainer runs: small matrix multiplies are faster that way on
# a few cores. It must be set before NumPy loads (see numpy_cnn/cli/process_env.py).
from numpy_cnn.cli.process_env import set_thread_defaults

set_thread_defaults()

import matplotlib.pyplot as plt
import numpy as np

np.set_printoptions(precision=3, suppress=True, linewidth=110)
rng = np.random.default_rng(0)     # every random number below comes from here

# %% [markdown]
# ## 1. A convolution layer and its shapes
#
# Layers live in `numpy_cnn/nn/layers/`, one file each, forward beside backward. They
# take PyTorch's arguments and store PyTorch's names: a `Conv2d` has a `weight` of shape
# `(out_channels, in_channels, kH, kW)` and a `bias` of shape `(out_channels,)`.
# Images travel as `(N, C, H, W)`: batch, channels, height, width.

# %%
from numpy_cnn.nn.layers import Conv2d

conv = Conv2d(in_channels=3, out_channels=6, kernel_size=5, rng=rng)
x = rng.standard_normal((2, 3, 12, 12)).astype(np.float32)   # 2 images, 3 channels, 12x12
y = conv.forward(x)
print(conv)
print("weight", conv.weight.shape, " bias", conv.bias.shape)
print("x", x.shape, "-> y", y.shape)

# %% [markdown]
# Each output side follows one formula, with kernel `k`, stride `s` and zero padding `p`:
#
# `H' = (H + 2p - k) // s + 1`
#
# So a 5x5 kernel on 12x12 gives `(12 - 5) // 1 + 1 = 8`. Padding 2 keeps the size,
# stride 2 halves it (rounding down, as PyTorch does):

# %%
from numpy_cnn.shapes import conv_output_size

for stride, padding in [(1, 0), (1, 2), (2, 2)]:
    layer = Conv2d(3, 6, 5, stride=stride, padding=padding, rng=rng)
    print(f"stride {stride}, padding {padding}: {layer.forward(x).shape}   "
          f"formula: {conv_output_size(12, 5, stride, padding)}")

# %% [markdown]
# ## 2. A backward pass by hand, checked by finite differences
#
# Backprop gives the gradient of a scalar loss with respect to every input and weight.
# Let's write one ourselves for a tiny function, `y = relu(x @ W)`, with the loss
# `L = sum(y * G)` for a fixed random `G` (so every output matters, each with its own
# weight). The chain rule, one step at a time:
#
# * `z = x @ W`, `y = relu(z)`
# * `dL/dy = G`
# * `dL/dz = G * (z > 0)` (relu passes the gradient where it was positive)
# * `dL/dW = x.T @ dL/dz` and `dL/dx = dL/dz @ W.T`

# %%
def forward(x, W):
    z = x @ W
    return np.maximum(z, 0), z


def backward(G, x, W, z):
    dz = G * (z > 0)
    return dz @ W.T, x.T @ dz          # dL/dx, dL/dW


# float64: in float32 the finite differences below are too coarse to see a wrong gradient.
x_small = rng.standard_normal((4, 5))
W_small = rng.standard_normal((5, 3))
G = rng.standard_normal((4, 3))
y_small, z_small = forward(x_small, W_small)
dx_mine, dW_mine = backward(G, x_small, W_small, z_small)

# %% [markdown]
# Is it right? Nudge each weight by a tiny `eps` both ways and watch the loss:
# `dL/dW[i] ~ (L(W + eps) - L(W - eps)) / (2 eps)`. `numerical_gradient` does exactly that,
# one entry at a time, and `rel_error` compares the two answers scale-free (a correct
# gradient scores about 1e-10, a wrong one 1e-3 or more; the tests accept up to 1e-6).

# %%
from numpy_cnn.nn.gradcheck import check_layer, numerical_gradient, rel_error


def loss():
    return float(np.sum(forward(x_small, W_small)[0] * G))


print("dL/dW:", rel_error(dW_mine, numerical_gradient(loss, W_small)))
print("dL/dx:", rel_error(dx_mine, numerical_gradient(loss, x_small)))

# A classic bug: forget that relu blocks the gradient where z < 0.
dW_wrong = x_small.T @ G
print("dL/dW without the relu mask:", rel_error(dW_wrong, numerical_gradient(loss, W_small)))

# %% [markdown]
# (One caution: near `z = 0` relu has a kink, and a nudge that crosses it measures the
# wrong slope. With random inputs that is very unlikely here; the tests keep their
# inputs away from kinks on purpose.)
#
# `check_layer` runs the same check on a real layer: its input gradient and every
# parameter's. Here is a convolution in float64, in its readable NumPy form
# (`method="reference"`, the one to read in `numpy_cnn/nn/layers/conv.py`; the tests
# check the fast numba ones the same way):

# %%
conv64 = Conv2d(3, 4, 3, padding=1, rng=rng, dtype=np.float64, method="reference")
print(check_layer(conv64, rng.standard_normal((2, 3, 6, 6)), rng))

# %% [markdown]
# `python train_numpy.py gradcheck` does this for every layer of a whole network, plus
# the loss with respect to every parameter, and prints a table
# (`numpy_cnn.nn.gradcheck.check_network`).
#
# ## 3. Inside im2col
#
# A convolution slides a kernel over the image. im2col ("image to columns") copies every
# receptive field into a column of a matrix, so the whole convolution becomes one matrix
# multiply. Take one 4x4 image and a 3x3 kernel: there are 2x2 output positions, so
# 4 columns, each holding the 9 pixels under the kernel at that position.

# %%
from numpy_cnn.nn.im2col import im2col_reference

image = np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4)
cols = im2col_reference(image, (3, 3))
print("image:\n", image[0, 0])
print("cols", cols.shape, "(N, C*kH*kW, H'*W'):\n", cols[0])

# %%
fig, axes = plt.subplots(1, 2, figsize=(6, 3))
axes[0].imshow(image[0, 0], cmap="viridis")
axes[0].set_title("4x4 image")
axes[1].imshow(cols[0], cmap="viridis", aspect="auto")
axes[1].set_title("im2col: one column per output")
axes[1].set_xlabel("output position q = oy*W' + ox")
axes[1].set_ylabel("kernel tap k = i*kW + j")
for q in range(cols.shape[2]):
    for k in range(cols.shape[1]):
        axes[1].text(q, k, int(cols[0, k, q]), ha="center", va="center", color="w", fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# Each weight filter, flattened in the same order, is a row; one matrix multiply gives
# every filter at every position: `W.reshape(F, -1) @ cols` is `(F, H'*W')`, the output
# already in `(F, H', W')` order. It matches the layer's own forward:

# %%
conv_ref = Conv2d(1, 2, 3, rng=rng, dtype=np.float64, method="reference")
W = conv_ref.weight.data                                        # (F, C, kH, kW) = (2, 1, 3, 3)
by_hand = W.reshape(2, -1) @ cols[0] + conv_ref.bias.data[:, None]
print(by_hand.reshape(2, 2, 2))
print("equal to conv.forward:", np.allclose(by_hand.reshape(1, 2, 2, 2), conv_ref.forward(image)))

# %% [markdown]
# The backward pass runs the same picture in reverse: `W.T @ dy` gives a gradient per
# column, and col2im adds each one back onto the pixels it came from (a pixel in several
# receptive fields collects several gradients). `docs/backprop.md` derives it all.
#
# ## 4. Training the paper's network
#
# First some data. The project draws its own face-like images so that everything runs
# without a download: here 300 crops of 48x48 in FER2013's layout
# (`train/<Class>/*.png`, `test/<Class>/*.png`), written to a temporary folder.

# %%
import tempfile
import time
from pathlib import Path

from numpy_cnn.data import CLASSES, MeanSubtraction, load_dataset, to_float
from numpy_cnn.data.synthetic import ensure_synthetic_fer

root = ensure_synthetic_fer(Path(tempfile.mkdtemp()) / "fer", seed=0, images=300, workers=1)
data = load_dataset(root)
print("train", data.x_train.shape, data.x_train.dtype, " test", data.x_test.shape)
print("classes:", CLASSES)

fig, axes = plt.subplots(1, 7, figsize=(9, 1.8))
for c, ax in enumerate(axes):
    ax.imshow(data.x_train[np.flatnonzero(data.y_train == c)[0]], cmap="gray")
    ax.set_title(CLASSES[c], fontsize=8)
    ax.axis("off")
plt.show()

# %% [markdown]
# What the network sees: pixels scaled to [0, 1], minus the *training* images' mean, and
# the gray channel copied three times, `(N, 3, 48, 48)` float32 (`network_input`, in
# `numpy_cnn/train/loop.py`).
#
# The network is the paper's, written as a one-line spec (`numpy_cnn/nn/arch.py`):
# `c6k5-relu-pool2-c16k5-relu-pool2-fc120-relu-fc84-relu` (conv 6 filters 5x5, relu,
# 2x2 max-pool, ..., then a classifier for 7 classes). On only 240 images it sits at
# chance for several epochs before it starts to learn, so here we add BatchNorm after
# each conv (`bn`), which normalises each channel over the batch and lets it learn from
# the first epochs. Try the plain spec too.

# %%
from numpy_cnn.nn.arch import build_model
from numpy_cnn.nn.optim import Adam
from numpy_cnn.train.loop import evaluate, network_input, train_epoch

mean = MeanSubtraction.fit(data.x_train)              # fitted on training images only
x_train = network_input(to_float(data.x_train), mean)
x_test = network_input(to_float(data.x_test), mean)
print("network input", x_train.shape, x_train.dtype)

spec = "c6k5-bn-relu-pool2-c16k5-bn-relu-pool2-fc120-relu-fc84-relu"
model = build_model(spec, rng=rng)                      # 48x48 input, 7 classes
optimizer = Adam(model.parameters(), lr=1e-3)
print(model)

# %% [markdown]
# One epoch is one pass over the shuffled training images in batches: forward, loss,
# backward, one optimizer step per batch (`train_epoch`). `evaluate` runs the test
# images forward only.

# %%
history = []
start = time.perf_counter()
for epoch in range(1, 11):
    order = rng.permutation(len(data.y_train))
    stats = train_epoch(model, optimizer, x_train[order], data.y_train[order], batch_size=16)
    test_loss, test_acc, predicted = evaluate(model, x_test, data.y_test)
    history.append((stats.loss, test_loss, stats.accuracy, test_acc))
    print(f"epoch {epoch:2d}  train loss {stats.loss:.3f} acc {stats.accuracy:.2f}   "
          f"test loss {test_loss:.3f} acc {test_acc:.2f}")
print(f"{time.perf_counter() - start:.1f} s; guessing the largest class would score "
      f"{np.bincount(data.y_test).max() / len(data.y_test):.2f}")

# %%
history = np.array(history)
epochs = np.arange(1, len(history) + 1)
fig, axes = plt.subplots(1, 2, figsize=(8, 2.8))
axes[0].plot(epochs, history[:, 0], label="train")
axes[0].plot(epochs, history[:, 1], label="test")
axes[0].set_title("loss")
axes[1].plot(epochs, history[:, 2], label="train")
axes[1].plot(epochs, history[:, 3], label="test")
axes[1].set_title("accuracy")
for ax in axes:
    ax.set_xlabel("epoch")
    ax.legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# The training loss keeps falling while the test accuracy levels off: with 240 images
# the network starts to memorise them (overfitting). This is a first look, not a result:
# the full run (`python train_numpy.py`) trains on the 675-frame generated SFEW-like set
# with the paper's augmentation, and `README.md` reports what it reaches.
#
# ## 5. What did it learn?
#
# **Filters.** `conv1.weight` is `(6, 3, 5, 5)`. Its three input channels all see the
# same gray image, so what a filter does is the sum of its three channels: one 5x5
# picture per filter (red: positive weights, blue: negative).

# %%
filters = model.conv1.weight.data.sum(axis=1)           # (6, 5, 5)
scale = np.abs(filters).max()
fig, axes = plt.subplots(1, len(filters), figsize=(9, 1.8))
for f, ax in enumerate(axes):
    ax.imshow(filters[f], cmap="RdBu_r", vmin=-scale, vmax=scale)
    ax.set_title(f"filter {f}", fontsize=8)
    ax.axis("off")
plt.show()

# %% [markdown]
# **Saliency** (Simonyan et al., 2014): which pixels would change the predicted class's
# score most? That is the gradient of the score with respect to the input image, one more
# backward pass, all the way down to the pixels (`numpy_cnn/study/viz.py`). Does the
# network look at the brows and the mouth, where the generator draws the expressions?

# %%
from numpy_cnn.study.viz import saliency

i = 0
sal, c = saliency(model, x_test[i:i + 1])               # (48, 48), the predicted class
fig, axes = plt.subplots(1, 3, figsize=(7, 2.6))
axes[0].imshow(data.x_test[i], cmap="gray")
axes[0].set_title(f"true: {CLASSES[data.y_test[i]]}", fontsize=9)
axes[1].imshow(sal, cmap="inferno")
axes[1].set_title(f"|d score / d x| for {CLASSES[c]}", fontsize=9)
axes[2].imshow(data.x_test[i], cmap="gray")
axes[2].imshow(sal, cmap="inferno", alpha=0.6)
axes[2].set_title("overlay", fontsize=9)
for ax in axes:
    ax.axis("off")
plt.show()

# %% [markdown]
# ## Where next
#
# * `docs/backprop.md`: every backward pass derived, pointing at the code.
# * `numpy_cnn/nn/layers/`: the layers, each forward beside its backward; `numpy_cnn/nn/naive.py`
#   has the plainest loop-by-loop convolution and pooling.
# * `python train_numpy.py trace` prints every shape and gradient of one image's journey;
#   `python train_numpy.py visualize` saves these pictures for a trained run.
