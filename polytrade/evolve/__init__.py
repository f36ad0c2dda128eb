"""DEAP evolution of a Strategy's params under the guardrails, with promotion gates.

Layer 5.
"""
