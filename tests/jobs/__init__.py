"""Tests of ril_dash.jobs: the job store, the runner and the work of export and import jobs."""
