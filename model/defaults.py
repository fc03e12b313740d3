"""Inference defaults shared by the Tagger and bin/tag's options, importable without torch."""

DEFAULT_BATCH_SIZE = 128  # CPU: sentences per batch (128 measured faster than 256: cache-sized steps)
DEFAULT_MAX_TOKENS = 8192  # CPU: padded tokens per batch, bounds memory for long inputs
# CPU: one time step's fixed cost in sentences' worth of work, for cutting batches where padding
# against steps costs least (model.batching.plan_batches). 32 was the fastest value measured, or
# within noise of it (docs/benchmarks.md#the-step-cost).
CPU_STEP_COST = 32.0
CUDA_BATCH_SIZE = 4096  # a GPU needs wide batches to be busy; see bench/gpu_check.sh
CUDA_MAX_TOKENS = 131072
PRECISION_CHOICES = ("auto", "fp32", "bf16", "int8")  # model.inference.resolve_precision says what auto picks
