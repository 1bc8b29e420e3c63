"""Trajectories: the root of a study, exploration, parameter spaces, runs and queries."""
