"""Deployments of boardflow flows: the serve entry point, parameter sets and a local Prefect server helper."""
