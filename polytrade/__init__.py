"""Polytrade: autonomous trading of Poloniex perpetual futures from YAML specs kept in git."""
