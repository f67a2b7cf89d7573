"""Province mode (issue 16): the counties' upward pushes received (``receiver``), validated by the
county's contracts into an Iceberg lake (``pushes``, ``lake``), measured per county (``measure``)
and ranked across counties (``ranking``, ``report``). Plain functions per module; thin Dagster
assets beside them (``assets``, ``report_assets``)."""
