"""lachesis"""
