"""Avro schemas and their codec (arrives with the streaming learner)."""
