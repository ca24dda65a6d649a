"""The app's page: the shared input panel (inputs.py), one module per tab, and what they share (common.py)."""
