"""The Poloniex v3 futures venue (ccxt REST, own websocket client) and its loopback emulator."""
