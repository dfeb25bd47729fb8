"""edge_models"""
