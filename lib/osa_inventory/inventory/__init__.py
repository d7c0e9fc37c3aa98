"""The inventory document every layer shares: what it is made of, the shape it must have, how two differ.

``document`` names its parts (``_meta.hostvars``, ``all``, the groups) and
reads them; ``shape`` checks a stored inventory wherever one is read (the
storage layer's load, ``--import``, version readers); ``changes`` compares
two inventories in the terms operators think in (the inventory script's
change records, ``--history``, ``--diff`` and ``--plan``). The generator,
the storage layer and inventory-manage all use these; none of them depends
on the others.
"""
