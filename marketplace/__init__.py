"""Raw marketplace tables: their contract, loading, validation and a simulator."""
