"""PyTorch side of bench/features_linear.ts: a linear layer on cached codes.

Usage: python3 bench/features_linear_torch.py CODES_F32 LABELS_I32 N DIM EPOCHS

The codes (N x DIM float32, already standardized by the Deno side) and
labels come from the Deno side. Softmax regression, nn.Linear(DIM, 10)
with cross-entropy and an L2 penalty, full batch, EPOCHS epochs: each epoch
one forward and backward pass over all N codes and one Adam step. Prints
one JSON line with the seconds and the training accuracy.
"""
import json, sys, time
import numpy as np
import torch
import torch.nn as nn

codes, labels, n, dim, epochs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
x = torch.from_numpy(np.fromfile(codes, dtype=np.float32).reshape(n, dim))
y = torch.from_numpy(np.fromfile(labels, dtype=np.int32).astype(np.int64))
torch.manual_seed(0)
head = nn.Linear(dim, 10)
opt = torch.optim.Adam(head.parameters(), lr=0.05, weight_decay=1e-5)
loss_fn = nn.CrossEntropyLoss()
t = time.perf_counter()
passes = 0
for epoch in range(epochs):
    opt.zero_grad()
    loss = loss_fn(head(x), y)
    loss.backward()
    opt.step()
    passes += 1
seconds = time.perf_counter() - t
with torch.no_grad():
    acc = (head(x).argmax(1) == y).float().mean().item()
print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "codes": n,
                  "codeLength": dim, "passes": passes, "seconds": seconds, "trainAccuracy": acc}))
