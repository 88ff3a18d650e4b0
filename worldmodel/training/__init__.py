"""Training: the pretraining stages (video, metric, task, dynamics, hierarchy) and what they share (schedules,
guards, distributed helpers). Checkpoints, summaries and TensorBoard live in ``worldmodel.io``.

Import from the submodules (``worldmodel.training.video_stage`` ...); this package imports nothing eagerly
so that ``import worldmodel.training`` stays cheap.
"""
