"""What the package is configured from and what it renders: the settings
schema, the file layout, the loader, the rendered bytes, root's record of
the last good settings, upstream's shipped manifests, Hailo's model names
across its releases (renames) and the files generated from the schema.
Pure functions and readers; nothing here starts a process."""
