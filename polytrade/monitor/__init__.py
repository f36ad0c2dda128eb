"""Health, metrics, alerts and the supervisor that restarts failed tasks.

Layer 5.
"""
