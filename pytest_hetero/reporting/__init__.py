"""Reports: the canonical JSON report, JUnit properties, the terminal table."""
