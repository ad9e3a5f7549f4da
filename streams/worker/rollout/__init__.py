"""Champion, challenger and canary: stable cohorts, the always-valid comparison of versions on the
agents' reported losses, the rollout policy, and the aliases rebuilt from the log."""
