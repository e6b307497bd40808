"""PyTorch side of bench/features_run.ts: the same features run, timed.

Usage: python3 bench/features_run_torch.py IMAGES_F32 LABELS_I32 N_TRAIN EPOCHS

The images (N x 28 x 28 x 1 float32 in [0, 1], training images first, then
validation) and labels come from the Deno side, so both sides see the same
data. Codes: LeNet-5's conv1 (6 filters 5x5, 'same', ReLU) and 2x2 max
pooling, flattened to 1,176 values per image, in inference mode. Then a
linear layer on the standardized codes, Adam (lr 0.01, batches of 32),
for EPOCHS epochs, with the validation accuracy after each, as usual in
PyTorch. Two ways are timed: codes once ("codes once"), and the frozen
trunk run again every epoch, as a training loop with frozen layers does
("trunk every epoch"). Prints one JSON line.
"""
import json, sys, time
import numpy as np
import torch
import torch.nn as nn

images, labels, n_train, epochs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
x = torch.from_numpy(np.fromfile(images, dtype=np.float32).reshape(-1, 28, 28, 1)).permute(0, 3, 1, 2).contiguous()
y = torch.from_numpy(np.fromfile(labels, dtype=np.int32).astype(np.int64))
torch.manual_seed(0)
trunk = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten()).eval()


def codes_of(images):
    with torch.no_grad():
        return torch.cat([trunk(images[i:i + 128]) for i in range(0, len(images), 128)])


def train_linear(get_codes):
    head = nn.Linear(1176, 10)
    opt = torch.optim.Adam(head.parameters(), lr=0.01)
    loss_fn = nn.CrossEntropyLoss()
    g = torch.Generator().manual_seed(0)
    acc = 0.0
    codes = get_codes()
    for epoch in range(epochs):
        if epoch > 0:
            codes = get_codes()
        mean, std = codes[:n_train].mean(0), codes[:n_train].std(0).clamp_min(1e-6)
        z = (codes - mean) / std
        order = torch.randperm(n_train, generator=g)
        for i in range(0, n_train, 32):
            idx = order[i:i + 32]
            opt.zero_grad()
            loss_fn(head(z[idx]), y[idx]).backward()
            opt.step()
        with torch.no_grad():
            acc = (head(z[n_train:]).argmax(1) == y[n_train:]).float().mean().item()
    return acc


cached = {}
def once():
    if "codes" not in cached:
        cached["codes"] = codes_of(x)
    return cached["codes"]


result = {"torch": torch.__version__, "threads": torch.get_num_threads(), "images": len(x),
          "train": n_train, "codeLength": int(codes_of(x[:1]).shape[1]), "epochs": epochs}
for name, get in [("codes once", once), ("trunk every epoch", lambda: codes_of(x))]:
    cached.clear()
    t = time.perf_counter()
    acc = train_linear(get)
    result[name] = {"seconds": time.perf_counter() - t, "valAccuracy": acc}
print(json.dumps(result))
