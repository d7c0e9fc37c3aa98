"""The etcd backend's engine behind the thin adapter lib/plugins/etcd.py.

``client`` (the v3 JSON gateway), ``layout`` (the keys under a prefix), ``parts``
(how an inventory is cut into parts), ``reader`` (the read protocol), ``writer``
(the commit protocol), ``lock`` (the inventory lock, shaped like etcd3gw's
``Lock``), ``lease`` (its keeper), ``identity`` (deployment markers) and
``access`` (read-only credentials).
"""
