"""The agent protocol: what every agent (ours or a third party's) offers to the episode loop.

Contract
--------
An agent drives one environment for one episode at a time:

1. ``reset(observation, info)`` is called once per episode, right after ``env.reset``.
   ``observation`` is the first observation (for our envs an RGB image ``(H, W, 3) uint8``);
   ``info`` is the reset info dict. Goal-conditioned envs put the goal there: ``goal_image``
   ``(H, W, 3) uint8`` (what a pixel-based agent should use) and, for privileged agents such as the
   oracle, ``goal_state (S,)``; also ``state``, ``distance`` and ``is_success``. The agent may keep any
   per-episode state (the goal, a warm-start plan, an RNG) and must clear what it kept from the
   previous episode here.
2. ``act(observation)`` is called once per env step with the current observation and returns one
   action: a numpy array with exactly ``env.action_space.shape`` and a dtype castable to
   ``env.action_space.dtype`` (``float32`` for our ``Box(-1, 1, (A,))``), finite, inside the box.
   The episode loop (``agents.episodes.run_episode``) treats an exception, a non-finite action or
   an action of the wrong shape/dtype as a failed episode of that agent, not as a crash of the run.

Construction convention
-----------------------
The registry constructs every agent, ours or a plug-in's, as ``AgentClass(env=env, **params)``:

- ``env`` is the (wrapped) gymnasium env the agent will act in. Read ``env.action_space`` for the
  action shape and bounds; privileged agents may use ``env.unwrapped`` (e.g. its simulator). Keep a
  reference if needed, but never step the env yourself.
- ``params`` are explicit keyword parameters with defaults (``seed=0``, ``horizon=10``, ...). Declare
  them in the signature, do not swallow them with ``**kwargs``: the registry inspects the signature
  (``inspect.signature``) to reject misspelt parameters with a one-line error listing the accepted
  ones.
- Context keywords that the framework offers to every agent (``agents.registry.CONTEXT_KEYWORDS``,
  e.g. ``world_model``: the loaded checkpoint for world-model agents) are passed only to classes
  whose signature names them; other agents never see them.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Agent(Protocol):
    """Acts in a goal-conditioned env: ``reset(observation, info)`` per episode, ``act(observation)`` per step."""

    def reset(self, observation: np.ndarray, info: dict[str, Any]) -> None:
        """Start a new episode from ``observation`` (e.g. ``(H, W, 3) uint8``); read the goal from ``info``."""
        ...

    def act(self, observation: np.ndarray) -> np.ndarray:
        """Return the next action: shape ``env.action_space.shape``, castable to its dtype, finite, in bounds."""
        ...
