"""What the PyTorch sides of the benchmarks share: the networks they time and
how they time them, so that bench/training_torch.py and bench/finetune_torch.py
run the same models the same way (imported as a module beside them).

MobileNetV2 is defined here (torchvision may be absent) with the nsfwjs
checkpoint's layout: Keras' MobileNetV2 base and the nsfwjs head (average pool,
Dense 256, Dense 128, Dense 5).
"""
import math, statistics, time
import torch.nn as nn


def conv_bn(i, o, k, s, groups=1):
    return [nn.Conv2d(i, o, k, s, k // 2, groups=groups, bias=False), nn.BatchNorm2d(o), nn.ReLU6(inplace=True)]


class InvertedResidual(nn.Module):
    def __init__(self, i, o, s, t):
        super().__init__()
        h = i * t
        layers = [] if t == 1 else conv_bn(i, h, 1, 1)
        layers += conv_bn(h, h, 3, s, groups=h)
        layers += [nn.Conv2d(h, o, 1, 1, 0, bias=False), nn.BatchNorm2d(o)]
        self.block = nn.Sequential(*layers)
        self.skip = s == 1 and i == o

    def forward(self, x):
        return x + self.block(x) if self.skip else self.block(x)


def mobilenet_v2(classes=5):
    cfg = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
    layers = conv_bn(3, 32, 3, 2)
    c = 32
    for t, o, n, s in cfg:
        for j in range(n):
            layers.append(InvertedResidual(c, o, s if j == 0 else 1, t))
            c = o
    layers += conv_bn(c, 1280, 1, 1)
    head = [nn.AvgPool2d(7), nn.Flatten(), nn.Linear(1280, 256), nn.ReLU(), nn.Dropout(0.1),
            nn.Linear(256, 128), nn.ReLU(), nn.Dropout(0.1), nn.Linear(128, classes)]
    return nn.Sequential(*layers, *head)


def lenet():
    return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(),
                         nn.AvgPool2d(2), nn.Flatten(), nn.Linear(16 * 5 * 5, 84), nn.ReLU(), nn.Linear(84, 10))


def keras_mnist():
    """Keras' MNIST example convnet (examples/vision/mnist_convnet, the 32/64-filter version)."""
    return nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Dropout(0.25), nn.Flatten(), nn.Linear(9216, 128), nn.ReLU(), nn.Dropout(0.5),
                         nn.Linear(128, 10))


def fold_batch_norms(model):
    """The eval-mode `model` with every BatchNorm2d that directly follows a Conv2d
    in a Sequential folded into it (torch.nn.utils.fusion.fuse_conv_bn_eval),
    and how many were folded."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval
    count = 0

    def fold(mod):
        nonlocal count
        if isinstance(mod, nn.Sequential):
            kids, out, i = list(mod.children()), [], 0
            while i < len(kids):
                if isinstance(kids[i], nn.Conv2d) and i + 1 < len(kids) and isinstance(kids[i + 1], nn.BatchNorm2d):
                    out.append(fuse_conv_bn_eval(kids[i], kids[i + 1]))
                    count += 1
                    i += 2
                else:
                    out.append(fold(kids[i]))
                    i += 1
            return nn.Sequential(*out)
        for name, child in list(mod.named_children()):
            setattr(mod, name, fold(child))
        return mod
    return fold(model), count


def training_step(model, opt, x, y):
    """One optimizer step of softmax cross-entropy on the batch (x, y), as a closure to time."""
    loss_fn = nn.CrossEntropyLoss()

    def step():
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()
    return step


def measure(step, batch, max_iters, budget=math.inf):
    """Images/s of `step` on `batch` images: the median of up to `max_iters` timed
    calls after one warm-up call, stopping early once `budget` seconds have passed."""
    step()
    times, start = [], time.perf_counter()
    while len(times) < max_iters and (not times or time.perf_counter() - start < budget):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    return {"imagesPerSecond": batch / statistics.median(times), "iterations": len(times)}
