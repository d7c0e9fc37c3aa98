"""Storage machinery shared by every backend: settings, plugins, files, options.

``settings`` reads osa.ini; ``loader.open_backend`` opens the backend a
section names: ``registry`` says which plugin a name means and which names
exist (deployer folders, then installed distributions found by
``discovery``, then the built-ins; ``catalog`` lists them for
``--list-backends``), ``trust`` checks plugin files before any import,
``importer`` and ``plugin_import`` import them, ``options`` checks the
section against the plugin's declaration, ``watchdog`` limits each call,
and ``backend.Backend`` wraps the plugin with every failure made one line
(typed errors from :mod:`osa_inventory.errors`; the commands add the
advice). File-based stores share ``store_files`` (a store folder's files,
never through a planted link), ``safe_files`` (locks), ``file_access``
(group and mode) and ``read_only``.
"""
