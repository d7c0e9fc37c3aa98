"""Craton REST client, inventory mapping and local cache used by lib/plugins/craton.py."""
