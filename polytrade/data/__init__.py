"""Market-data catalog (parquet via polars), downloads and the seeded synthetic market.

Layer 2: imports spec, signals and core.
"""
