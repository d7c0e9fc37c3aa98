"""The Craton backend's engine behind the thin adapter lib/plugins/craton.py.

``options`` (the checked options), ``region`` (finding the region; what its
variables say about writes), ``store`` (the full load and the write protocol),
over ``client`` (HTTP), ``cache`` (the local cache), ``mapping`` (inventory <->
Craton layout, no I/O), ``writers`` (write marks and undo records) and
``records`` (change records).
"""
