"""The one per-bar engine step shared by backtest, paper and live; ports.py defines its Protocols.

Layer 3: imports compile, risk and core. It never imports ccxt, the store or the web.
"""
