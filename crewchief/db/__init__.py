"""App database: models, sessions, migrations runner, recorder and read queries."""
