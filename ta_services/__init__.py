"""ta_services/: the thin transfer-agent services that submit attested events."""
