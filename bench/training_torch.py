"""PyTorch CPU side of bench/training.ts: runs one case and prints one JSON line.

Usage: python3 bench/training_torch.py SECONDS CASE
CASE is lenetTrain, kerasMnistTrain, mobilenetTrain or mobilenetInfer. The line
holds images/s (median of timed steps after one warm-up step) and the number of
trainable tensors and parameters, which must match what the tfjs side trains
(EXPECTED; the script stops otherwise). MobileNetV2 is defined here (torchvision
may be absent) with the nsfwjs checkpoint's layout: Keras' MobileNetV2 base and
the nsfwjs head (average pool, Dense 256, Dense 128, Dense 5).
"""
import json, sys, time, statistics
import torch
import torch.nn as nn

budget = float(sys.argv[1]) if len(sys.argv) > 1 else 15.0
case = sys.argv[2] if len(sys.argv) > 2 else "lenetTrain"

# Trainable tensors and parameters of each case's model, the same on both sides.
EXPECTED = {
    "lenetTrain": (8, 37_106),
    "kerasMnistTrain": (8, 1_199_882),
    "mobilenetTrain": (162, 2_585_349),
    "mobilenetInfer": (162, 2_585_349),
}


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


def measure(step, batch, max_iters):
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
model = {"lenetTrain": lenet, "kerasMnistTrain": keras_mnist}.get(case, mobilenet_v2)()
trainable = [p for p in model.parameters() if p.requires_grad]
counts = (len(trainable), sum(p.numel() for p in trainable))
if counts != EXPECTED[case]:
    sys.exit(f"{case}: PyTorch has {counts[0]} trainable tensors of {counts[1]} parameters, not {EXPECTED[case]}")
out = {"torch": torch.__version__, "threads": torch.get_num_threads(), "tensors": counts[0], "params": counts[1]}
if case in ("lenetTrain", "kerasMnistTrain"):
    x, y = torch.randn(128, 1, 28, 28), torch.randint(0, 10, (128,))
    out[case] = measure(train_step(model.train(), x, y), 128, 100)
elif case == "mobilenetTrain":
    x, y = torch.randn(32, 3, 224, 224), torch.randint(0, 5, (32,))
    out[case] = measure(train_step(model.train(), x, y), 32, 5)
else:
    model = model.eval()
    x = torch.randn(32, 3, 224, 224)

    def infer():
        with torch.no_grad():
            model(x)
    out[case] = measure(infer, 32, 10)
print(json.dumps(out))
