"""OpenStack-Ansible compatible dynamic inventory with pluggable storage."""

__version__ = "0.1.0"
