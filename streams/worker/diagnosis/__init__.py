"""Self-diagnosis: rules as data over the worker's signals, and the remedies they take."""
