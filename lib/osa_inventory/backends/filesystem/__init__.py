"""The filesystem backend's engine behind the thin adapter lib/plugins/filesystem.py.

``store`` (the store folder's inventory: read, checked, saved atomically, locked),
``archive`` (the backup archive beside it), ``records`` (the change records) and
``single_file`` (the store of ``inventory-manage -f FILE``, built from the same
engine and run through the same contract suite).
"""
