"""Province mode (issue 16): county pushes → validated frames → Iceberg lake → county figures."""
