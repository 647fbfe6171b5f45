"""File tools for delegate models and meta-tools for the planner."""
