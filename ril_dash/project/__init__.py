"""Projects: project.yaml, series discovery and metadata, the annotation store with its versions,
edits, import and export, users and sessions, series leases, the audit log and the workflow state
of each series. Nothing here imports the UI or a web framework.
"""
