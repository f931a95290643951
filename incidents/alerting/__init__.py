"""Alert ingestion: integrations, webhook receivers, routing, dedup, maintenance and flap suppression."""
