"""The probe engine: monitors, probes, conditions, scheduling, incidents."""
