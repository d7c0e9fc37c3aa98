"""The NetBox storage backend: client, exact JSON codec, mapping and store (docs/netbox.md)."""
