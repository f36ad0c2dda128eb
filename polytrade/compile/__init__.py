"""Strategy spec to Plan: the typed, de-duplicated signal DAG with params as runtime inputs.

Layer 2: imports spec, signals and core.
"""
