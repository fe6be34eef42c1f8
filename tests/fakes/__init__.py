"""Stand-ins for hardware libraries so meter code runs in tests on machines without the hardware."""
