"""Workflows that move series between pools of users (multi-user issue; not yet built)."""
