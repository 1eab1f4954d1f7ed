"""Tests of ril_dash.models: manifests, discovery, the project's model settings, bundle zips."""
