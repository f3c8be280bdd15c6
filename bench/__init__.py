"""fishbench: FishNet against the usual baselines on small image datasets, measured honestly."""

import os

__version__ = "0.1.0"

# TensorFlow's C++ start-up chatter (oneDNN, CPU features) is noise on every command.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
