"""etcd v3 JSON-gateway client used by lib/plugins/etcd.py."""
