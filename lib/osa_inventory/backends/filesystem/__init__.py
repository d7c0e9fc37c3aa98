"""The filesystem backend's engine: the backup archive and the change records beside the inventory.

The thin adapter is lib/plugins/filesystem.py.
"""
