"""``scripts/inventory-manage.py``: the operators' tool for the stored inventory.

One module per job: ``stores`` opens what the tool works on (the osa.ini
backend or a ``--file``), ``views`` and ``formatting`` make the listings,
``edits`` removes hosts and groups and clears addresses, ``inventory_file``
validates and converts inventories read from files, ``transfer`` migrates
and imports, ``versions`` lists, compares and restores versions, ``stale``
compares the stored inventory with what the config produces, ``plan``
works out what the next run would store, ``recording`` and
``history_view`` write and show change records, and ``cli`` ties them to the
command line through one table of actions (``cli.ACTIONS``). The entry
point is :mod:`osa_inventory.commands.manage`; nothing else outside this
package imports it.
"""
