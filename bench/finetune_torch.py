"""PyTorch CPU side of bench/finetune.ts: prints one JSON line of images/s medians per strategy.

Usage: python3 bench/finetune_torch.py STEPS
The model definitions (LeNet, MobileNetV2) are bench/_torch_models.py's, which
bench/training_torch.py times too.
"""
import json, sys
import torch
import torch.nn as nn
from _torch_models import lenet, measure, mobilenet_v2, training_step

steps = int(sys.argv[1]) if len(sys.argv) > 1 else 2


def median_rate(step, batch):
    return {"imagesPerSecond": measure(step, batch, steps)["imagesPerSecond"]}


def features(trunk, x):
    trunk.eval()

    def step():
        with torch.no_grad():
            trunk(x)
    return step


def train(model, frozen, x, y):
    for p in frozen.parameters():
        p.requires_grad_(False)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    model.train()
    for m in frozen.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eval()
    return training_step(model, opt, x, y)


torch.manual_seed(0)
cells = {}
# LeNet: the head replaced at the last pooling (the feature cut), as fineTuneNetwork does.
x, y = torch.randn(128, 1, 28, 28), torch.randint(0, 10, (128,))
trunk = nn.Sequential(*list(lenet())[:6])
cells["lenet5/features"] = median_rate(features(trunk, x), 128)
for strategy in ["partial", "full"]:
    trunk = nn.Sequential(*list(lenet())[:6])
    model = nn.Sequential(trunk, nn.Flatten(), nn.Linear(16 * 5 * 5, 10))
    frozen = nn.Sequential(trunk[0]) if strategy == "partial" else nn.Sequential()
    cells[f"lenet5/{strategy}"] = median_rate(train(model, frozen, x, y), 128)
# MobileNetV2: codes after global pooling; partial freezes the first half of the trunk.
x, y = torch.randn(32, 3, 224, 224), torch.randint(0, 5, (32,))
net = mobilenet_v2()
trunk = nn.Sequential(*list(net)[:-2])
cells["mobilenetV2/features"] = median_rate(features(trunk, x), 32)
for strategy in ["partial", "full"]:
    net = mobilenet_v2()
    layers = list(net)
    frozen = nn.Sequential(*layers[: (len(layers) - 4) // 2]) if strategy == "partial" else nn.Sequential()
    cells[f"mobilenetV2/{strategy}"] = median_rate(train(net, frozen, x, y), 32)
print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "cells": cells}))
