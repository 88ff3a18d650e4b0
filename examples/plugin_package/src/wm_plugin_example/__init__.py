"""Example worldmodel plug-in: the ``sine`` agent and the ``dot`` env (see docs/plugins.md)."""
