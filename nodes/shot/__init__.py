"""The shot request and the engine contract: what every generation node asks of an engine."""
