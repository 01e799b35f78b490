"""env_server"""
