"""platform_ingest"""
