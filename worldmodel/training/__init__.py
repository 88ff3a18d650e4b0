"""Training utilities every stage shares: schedules, checkpoints, TensorBoard, distributed, guards, summary.

Import from the submodules (``worldmodel.training.checkpoint`` ...); this package imports nothing eagerly
so that ``import worldmodel.training`` stays cheap.
"""
