"""Storage machinery shared by every backend: osa.ini settings, the plugin loader, safe files, options."""
