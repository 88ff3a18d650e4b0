"""What a run writes and reads back: atomic file writes, checkpoints, ``summary.json`` and TensorBoard event files.

Planning and training both use it; it imports nothing from ``worldmodel.training``.
"""
