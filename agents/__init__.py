"""Agents: the ``Agent`` protocol, the registry (ours + ``worldmodel.agents`` plug-ins + dotted paths),
our agents and the fault-isolating episode loop (``agents.runner`` plays a run's episodes, also in worker
processes).

    from agents import make_agent, run_episode
    agent = make_agent("oracle", env, horizon=12)
    record = run_episode(env, agent, seed=0, agent_name="oracle")
"""

from agents.base import Agent
from agents.episodes import EpisodeRecord, check_action, run_episode
from agents.hierarchical import HierarchicalAgent
from agents.mpc import LatentMPCAgent
from agents.oracle import OracleAgent

# Importing our agents registers them.
from agents.random_agent import RandomAgent
from agents.registry import (
    AGENTS,
    CONTEXT_KEYWORDS,
    ENTRY_POINT_GROUP,
    available_agents,
    make_agent,
    make_agent_from_target,
    register_agent,
    resolve_agent,
)

__all__ = [
    "AGENTS",
    "CONTEXT_KEYWORDS",
    "ENTRY_POINT_GROUP",
    "Agent",
    "EpisodeRecord",
    "HierarchicalAgent",
    "LatentMPCAgent",
    "OracleAgent",
    "RandomAgent",
    "available_agents",
    "check_action",
    "make_agent",
    "make_agent_from_target",
    "register_agent",
    "resolve_agent",
    "run_episode",
]
