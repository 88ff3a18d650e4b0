"""Evaluations of the world models (prediction error vs horizon)."""
