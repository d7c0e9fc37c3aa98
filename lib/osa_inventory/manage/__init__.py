"""``scripts/inventory-manage.py``: the operators' tool for the stored inventory.

One module per job: ``stores`` opens what the tool works on (the osa.ini
backend or a ``--file``), ``views`` and ``formatting`` make the listings,
``edits`` removes hosts and groups and clears addresses, ``inventory_file``
validates and converts inventories read from files, ``transfer`` migrates
and imports, ``versions`` lists, compares and restores versions, ``stale``
compares the stored inventory with what the config produces, and ``cli``
ties them to the command line.
"""
