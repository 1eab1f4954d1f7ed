"""The Dash user interface: the only package that imports dash."""
