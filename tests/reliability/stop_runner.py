"""Runs `gankit train` like the CLI and sends itself SIGTERM while long work runs.

Usage: python stop_runner.py WHAT TIMES_FILE -- gankit train arguments...
WHAT: "none"; "evaluator", a metric pass made minutes long (the generated samples repeated 20
times); or "classifier", the feature classifier's training made minutes long (10,000
epochs). SIGTERM comes 0.5 s after that work starts; the time it was sent (time.time()) is
written to TIMES_FILE, so the test measures how long the process took to end after it.
"""

import os
import signal
import sys
import threading
import time

from gankit import cli
from gankit.extensions import gan_evaluator
from gankit.metrics import features

what, times_file = sys.argv[1], sys.argv[2]
argv = sys.argv[sys.argv.index("--") + 1:]


def signal_soon() -> None:
    def send() -> None:
        with open(times_file, "w") as f:
            f.write(repr(time.time()))
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Timer(0.5, send).start()


if what == "evaluator":
    real_compute = gan_evaluator.compute_metrics

    def long_compute(samples, *args, **kwargs):
        signal_soon()
        # Features of the repeated samples are extracted here, not the ones the evaluator
        # gathered beforehand: that is the long, polling part.
        kwargs.pop("fake_features", None)
        return real_compute(samples.repeat(20, 1, 1, 1), *args, **kwargs)

    gan_evaluator.compute_metrics = long_compute
elif what == "classifier":
    real_train = features.train_classifier

    def long_train(*args, **kwargs):
        signal_soon()
        return real_train(*args, **{**kwargs, "epochs": 10_000})

    features.train_classifier = long_train
code = cli.main(argv)
if code >= 128:  # as gankit/__main__.py does after a signal: no interpreter teardown
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
sys.exit(code)
