"""The command-line front ends: what turns a command line into a run and its outcome into output.

``script`` is the inventory script's entry point (``dynamic_inventory.py``,
``openstack-ansible-inventory``) and ``manage`` inventory-manage's (its
actions are in :mod:`osa_inventory.manage`); both run their work through
``runner``, which gives them one way to fail (usage errors, one-line errors
with the repair ``advice`` adds to storage refusals, a reader that goes
away, interrupts, bugs) and keeps stdout for the result (``stdout_guard``).
``bootstrap`` starts the checkout scripts under any ``python3``. Only the
entry points here and :mod:`osa_inventory.manage` itself import the
operators' tool.
"""
