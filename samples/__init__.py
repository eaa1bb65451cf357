"""Sample exports and the LogEntry builders behind them."""
