"""Ingest: the MQTT consumer that validates, stores and acknowledges the terminals' batches and keeps their Status."""
