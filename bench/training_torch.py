"""PyTorch CPU side of bench/training.ts: runs one case and prints one JSON line.

Usage: python3 bench/training_torch.py SECONDS CASE
CASE is lenetTrain, kerasMnistTrain, mobilenetTrain, mobilenetInfer or
mobilenetInferFolded (every BatchNorm2d folded into the Conv2d before it, as
the tfjs side folds its BatchNormalization layers). The line
holds images/s (median of timed steps after one warm-up step) and the number of
trainable tensors and parameters, which must match what the tfjs side trains
(EXPECTED; the script stops otherwise). The models are bench/_torch_models.py's.
"""
import json, sys
import torch
from _torch_models import fold_batch_norms, keras_mnist, lenet, measure, mobilenet_v2, training_step

budget = float(sys.argv[1]) if len(sys.argv) > 1 else 15.0
case = sys.argv[2] if len(sys.argv) > 2 else "lenetTrain"

# Trainable tensors and parameters of each case's model, the same on both sides.
EXPECTED = {
    "lenetTrain": (8, 37_106),
    "kerasMnistTrain": (8, 1_199_882),
    "mobilenetTrain": (162, 2_585_349),
    "mobilenetInfer": (162, 2_585_349),
    "mobilenetInferFolded": (162, 2_585_349),
}


def train_step(model, x, y):
    return training_step(model, torch.optim.SGD(model.parameters(), lr=1e-3), x, y)


torch.manual_seed(0)
model = {"lenetTrain": lenet, "kerasMnistTrain": keras_mnist}.get(case, mobilenet_v2)()
trainable = [p for p in model.parameters() if p.requires_grad]
counts = (len(trainable), sum(p.numel() for p in trainable))
if counts != EXPECTED[case]:
    sys.exit(f"{case}: PyTorch has {counts[0]} trainable tensors of {counts[1]} parameters, not {EXPECTED[case]}")
out = {"torch": torch.__version__, "threads": torch.get_num_threads(), "tensors": counts[0], "params": counts[1]}
if case in ("lenetTrain", "kerasMnistTrain"):
    x, y = torch.randn(128, 1, 28, 28), torch.randint(0, 10, (128,))
    out[case] = measure(train_step(model.train(), x, y), 128, 100, budget)
elif case == "mobilenetTrain":
    x, y = torch.randn(32, 3, 224, 224), torch.randint(0, 5, (32,))
    out[case] = measure(train_step(model.train(), x, y), 32, 5, budget)
else:
    model = model.eval()
    if case == "mobilenetInferFolded":
        model, folded = fold_batch_norms(model)
        if folded != 52:
            sys.exit(f"{case}: folded {folded} BatchNorm2d layers, not 52")
    x = torch.randn(32, 3, 224, 224)

    def infer():
        with torch.no_grad():
            model(x)
    out[case] = measure(infer, 32, 10, budget)
print(json.dumps(out))
