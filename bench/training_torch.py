"""PyTorch CPU side of bench/training.ts: prints one JSON line of images/s medians.

Usage: python3 bench/training_torch.py SECONDS_PER_CASE
MobileNetV2 is defined here (torchvision may be absent), same layout as Keras'.
"""
import json, sys, time, statistics
import torch
import torch.nn as nn

budget = float(sys.argv[1]) if len(sys.argv) > 1 else 20.0


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
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(1280, classes))


def lenet():
    return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(),
                         nn.AvgPool2d(2), nn.Flatten(), nn.Linear(16 * 5 * 5, 84), nn.ReLU(), nn.Linear(84, 10))


def measure(step, batch, warmup=1, max_iters=10):
    for _ in range(warmup):
        step()
    times, start = [], time.perf_counter()
    while len(times) < max_iters and (not times or time.perf_counter() - start < budget):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    return {"imagesPerSecond": batch / statistics.median(times), "iterations": len(times)}


def train_step(model, x, y):
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()

    def step():
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()
    return step


torch.manual_seed(0)
out = {"torch": torch.__version__, "threads": torch.get_num_threads()}
m = lenet().train()
out["mnistTrain"] = measure(train_step(m, torch.randn(128, 1, 28, 28), torch.randint(0, 10, (128,))), 128, max_iters=100)
if len(sys.argv) > 2 and sys.argv[2] == "mnist":
    # The paired MNIST rounds: this case alone.
    print(json.dumps(out))
    sys.exit(0)
m = mobilenet_v2().train()
out["mobilenetTrain"] = measure(train_step(m, torch.randn(32, 3, 224, 224), torch.randint(0, 5, (32,))), 32, max_iters=5)
m = m.eval()
x = torch.randn(32, 3, 224, 224)


def infer():
    with torch.no_grad():
        m(x)


out["mobilenetInfer"] = measure(infer, 32)
print(json.dumps(out))
