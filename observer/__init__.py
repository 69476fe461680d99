"""observer/: the regulator's verification tooling; depends on chain/ only."""
