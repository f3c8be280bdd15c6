"""The harness's speed-ups, all in this package, behind one switch: ``RunSpec.speedups``.

They change how fast a run trains, not what it computes (float32 sums in another order):
``bench run --no-speedups`` trains without them, to check that they change no result, and
``bench speed --baseline`` times a run without them. They take effect at two moments, hence
two modules:

- ``bench.speedups.process``: the settings TensorFlow reads when its process starts
  (oneDNN's kernels on every CPU, thread counts). A parent puts them into the environment
  of the child that will run TensorFlow, so this module, and this package's ``__init__``,
  import no TensorFlow.
- ``bench.speedups.training``: the model and its ``fit``: batch norm as one fused op
  (``bench.speedups.fused``), the SGD momentum update as one op per variable, several steps
  per Keras call, a train step traced once (``compile_with_speedups``), and grappler off
  for training steps (``TrainingGraphSettings``).
"""
