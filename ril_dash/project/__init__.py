"""Projects: project.yaml schema, series discovery, metadata and the annotation store."""
