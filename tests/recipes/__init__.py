"""The README's recipes, run for real: servers, workers and poolers in front of pglog."""
