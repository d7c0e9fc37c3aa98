"""The engines of the built-in backends, one package each; the plugins in lib/plugins/ are thin adapters.

``filesystem/`` (the store folder, its archive and change records, and the
store of ``inventory-manage -f FILE``), ``etcd/`` (client, read and commit
protocols, lock) and ``craton/`` (client, region, full load and write
protocol, cache). Each plugin file declares its options and hands the
storage contract to its engine; tests import the engines directly.
Both remote clients share ``tls`` (TLS failures explained) and
``http_answer`` (every answer read with a size bound).
"""
