"""Client code of the remote backends, and the change records of file-based stores.

The thin adapters live in lib/plugins/<name>.py.
"""
