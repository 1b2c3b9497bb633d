"""Deployment planning: manifest + cloud-config + current state -> ``DeploymentPlan``.

Pure: no I/O, no Django. See ``planner.py`` for the entry point.
"""
