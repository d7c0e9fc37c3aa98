"""Client code of the remote backends; the thin adapters live in lib/plugins/<name>.py."""
